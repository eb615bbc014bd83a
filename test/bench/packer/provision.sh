# The Packer way of what image-factory's debian-12 recipe does without booting (builder/pipeline/customise.ts): the
# scaleway-ecosystem package from its repository, kernel and cloud-init upgrades, the provenance file and package
# list, then the never-booted hygiene, on the booted guest over SSH. Run as root by the template.
export DEBIAN_FRONTEND=noninteractive
# The same dpkg and APT settings our run has for its duration (BUILD_GUARDS): no fsync per file, no translations.
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/image-factory-unsafe-io
echo 'Acquire::Languages "none";' > /etc/apt/apt.conf.d/image-factory-no-translations
list=/etc/apt/sources.list.d/scaleway-ecosystem.list
echo "deb [trusted=yes] $ECOSYSTEM_REPO/debian ./" > "$list"
apt-get -y update
apt-get -y install "scaleway-ecosystem=$ECOSYSTEM_VERSION"
apt-get -y install "$KERNEL_PACKAGE"
apt-get -y install cloud-init
rm -f "$list" /etc/dpkg/dpkg.cfg.d/image-factory-unsafe-io /etc/apt/apt.conf.d/image-factory-no-translations
printf 'IMAGE_ID=debian-12\nIMAGE_CONTENT_HASH=bench\n' > /etc/scw-release
dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\n' > /root/.factory-packages.tsv
# Hygiene, as a never-booted image has it; the booted guest made its identity, logs and cloud-init state.
rm -rf /etc/ssh/ssh_host_* /var/lib/dbus/machine-id /var/lib/cloud/* /var/log/cloud-init* /root/.bash_history \
  /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /var/log/journal/* /var/cache/apt/archives/*.deb \
  /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/tmp/*
truncate -s 0 /etc/machine-id
# (The user Packer logs in as stays: removing it would take the shutdown's sudo away; ours has no such user.)
fstrim -av || true
