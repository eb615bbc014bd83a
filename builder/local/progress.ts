/**
 * Progress of the local job with several images in flight: every line says which image and step it is about and
 * when (seconds since the job started), so interleaved tools stay readable in a log file or CI, where a live table
 * would only be noise. The tools' own output is cut into whole lines before it is prefixed.
 */

/** `+  12.3s debian-12-x86_64 build | text`: the prefix pads names so the columns line up. */
export function prefixLine(elapsedMs: number, label: string, width: number, text: string): string {
  return `+${(elapsedMs / 1000).toFixed(1).padStart(7)}s ${label.padEnd(width)} | ${text}`;
}

/** Cuts a stream's chunks into whole lines (a line split across chunks is held until its end arrives). */
export class LineSplitter {
  private rest = "";
  constructor(private readonly emit: (line: string) => void) {}
  push(chunk: string | Buffer): void {
    const text = this.rest + chunk.toString();
    const lines = text.split(/\r?\n|\r/);
    this.rest = lines.pop() ?? "";
    for (const l of lines) if (l.trim()) this.emit(l);
  }
  flush(): void {
    if (this.rest.trim()) this.emit(this.rest);
    this.rest = "";
  }
}

export interface Progress {
  /** A logger for one image and step, e.g. ("debian-12-x86_64", "build"). */
  lane(image: string, step: string): (line: string) => void;
  /** A line about the job itself. */
  job(line: string): void;
  elapsedMs(): number;
}

export function progress(
  write: (s: string) => void = (s) => process.stderr.write(s),
  now: () => number = Date.now,
  width = 28,
): Progress {
  const t0 = now();
  return {
    lane: (image, step) => (line) => write(`${prefixLine(now() - t0, `${image} ${step}`, width, line)}\n`),
    job: (line) => write(`${prefixLine(now() - t0, "local", width, line)}\n`),
    elapsedMs: () => now() - t0,
  };
}
