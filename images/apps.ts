/**
 * InstantApps: an app layers its own steps on an OS release (Ubuntu LTS, as Scaleway's InstantApps do). Its
 * artifact hash covers the base's upstream and recipe and the app's steps, so a base rebuild rebuilds the app.
 * Boot-time scripts live as files under `images/apps/<app>/` (reviewable, testable) and become write-file steps,
 * so editing one changes the recipe and rebuilds the image.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { SCALEWAY_DEFAULTS } from "./common";
import type { Release, Step } from "./schema";

/** `images/apps`, from source or from dist/ (data files are not compiled). */
function appsDir(): string {
  const candidates = [join(__dirname, "apps"), join(__dirname, "..", "..", "images", "apps")];
  const found = candidates.find((d) => existsSync(join(d, "wordpress")));
  if (!found) throw new Error(`images/apps not found near ${__dirname}`);
  return found;
}

/** Every file under `images/apps/<app>/` as a write-file step at the same path in the guest, in a stable order. */
function appFiles(app: string): Step[] {
  const root = join(appsDir(), app);
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));
  return walk(root).map((file) => ({
    op: "write-file",
    path: file.slice(root.length),
    content: readFileSync(file, "utf8"),
    mode: statSync(file).mode & 0o111 ? "0755" : "0644",
  }));
}

/** What every InstantApp shares: its base (the Ubuntu LTS, as Scaleway's InstantApps), the base's lifecycle. */
const ON_BASE = {
  kind: "app" as const,
  base: "ubuntu-24.04",
  released: "2024-04-25",
  eol: "2029-05-31",
  architectures: ["x86_64" as const],
};
/** InstantApps are administered as root, like every Scaleway image. */
const APP_SCS = { ...SCALEWAY_DEFAULTS, image_original_user: "root" } as const;

/** WordPress's own release and the sha1 wordpress.org publishes for its tarball (`<tarball>.sha1`). */
export const WORDPRESS = { version: "6.8.3", sha1: "fd56bcdc15f1877e45dce67942ea75949ed650e8" } as const;
export const WORDPRESS_TARBALL = `https://wordpress.org/wordpress-${WORDPRESS.version}.tar.gz`;

const wordpress = {
  id: "app-wordpress",
  label: "wordpress",
  title: `WordPress ${WORDPRESS.version}`,
  ...ON_BASE,
  scs: {
    ...APP_SCS,
    os_purpose: "custom",
    min_ram: 1024,
    image_description: `WordPress ${WORDPRESS.version} with Apache, PHP and MariaDB on Ubuntu 24.04 LTS; database password and salts are made at first boot.`,
  },
  recipe: [
    {
      op: "install",
      packages: [
        "apache2",
        "libapache2-mod-php",
        "php-mysql",
        "php-curl",
        "php-gd",
        "php-intl",
        "php-mbstring",
        "php-xml",
        "php-zip",
        "mariadb-server",
        "curl",
      ],
    },
    { op: "fetch-file", url: WORDPRESS_TARBALL, sha1: WORDPRESS.sha1, path: "/var/tmp/wordpress.tar.gz" },
    {
      op: "run",
      command:
        "rm -rf /var/www/wordpress && tar -xzf /var/tmp/wordpress.tar.gz -C /var/www && rm /var/tmp/wordpress.tar.gz && test -f /var/www/wordpress/wp-settings.php && chown -R www-data:www-data /var/www/wordpress",
    },
    ...appFiles("wordpress"),
    { op: "run", command: "a2dissite 000-default && a2ensite wordpress && a2enmod rewrite" },
    // Database initialisation: the server's own tables come with the package; the site's database is created
    // in bootstrap mode (no server, no network, no password). The user and its password are per instance.
    {
      op: "run",
      command:
        "echo 'CREATE DATABASE IF NOT EXISTS wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;' | mariadbd --bootstrap --user=mysql --skip-networking --log-error=/var/tmp/mariadb-bootstrap.log && rm -f /var/tmp/mariadb-bootstrap.log",
    },
    { op: "enable-service", name: "mariadb.service" },
    { op: "enable-service", name: "apache2.service" },
    { op: "enable-service", name: "scw-wordpress-firstboot.service" },
  ],
} satisfies Release;

const openvpn = {
  id: "app-openvpn",
  label: "openvpn",
  title: "OpenVPN",
  ...ON_BASE,
  scs: {
    ...APP_SCS,
    os_purpose: "network",
    min_ram: 512,
    image_description:
      "OpenVPN server with Easy-RSA on Ubuntu 24.04 LTS; its PKI and a first client profile (/root/client1.ovpn) are made at first boot.",
  },
  recipe: [
    { op: "install", packages: ["openvpn", "easy-rsa", "iptables", "curl"] },
    ...appFiles("openvpn"),
    { op: "enable-service", name: "scw-openvpn-nat.service" },
    { op: "enable-service", name: "scw-openvpn-firstboot.service" },
    { op: "enable-service", name: "openvpn-server@server.service" },
  ],
} satisfies Release;

export default [wordpress, openvpn] satisfies Release[];
