/**
 * Reads a process's CPU time and memory from Linux /proc, and the machine facts the report
 * prints. Every reader returns NaN (or "unknown") instead of throwing when /proc is missing or
 * the process has exited.
 */

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
export const CLOCK_TICKS_PER_S = 100;

/** User + system CPU seconds the process (all its threads) has used. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Field 2 (comm) may contain spaces and parentheses, so split after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/** A value in bytes from /proc/<pid>/status, e.g. "VmRSS" (current) or "VmHWM" (peak). */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples CPU and RSS of a set of processes over a window. */
export class ProcessMeter {
  #pids: number[];
  #startCpu = 0;
  #startAt = 0;
  #peakRss = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(pids: number[]) {
    this.#pids = pids;
  }

  /** Starts a window: remembers CPU now and samples RSS every `sampleMs`. */
  start(sampleMs = 100): void {
    this.#startCpu = this.#cpu();
    this.#startAt = performance.now();
    this.#peakRss = this.rss();
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      this.#peakRss = Math.max(this.#peakRss, this.rss());
    }, sampleMs);
  }

  /** CPU used since `start()` as a fraction of one core (1 = one core busy). */
  cpuShare(): number {
    const seconds = (performance.now() - this.#startAt) / 1000;
    return seconds > 0 ? (this.#cpu() - this.#startCpu) / seconds : NaN;
  }

  /** Sum of current RSS over the processes, in bytes. */
  rss(): number {
    return this.#pids.reduce((sum, pid) => sum + statusBytes(pid, "VmRSS"), 0);
  }

  /** Highest sampled RSS since `start()`, in bytes. */
  get peakRss(): number {
    return this.#peakRss;
  }

  /** Stops sampling; returns the CPU share over the window. */
  stop(): number {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#peakRss = Math.max(this.#peakRss, this.rss());
    return this.cpuShare();
  }

  #cpu(): number {
    return this.#pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  }
}

/** Per-core jiffies from /proc/stat: busy (everything but idle, iowait and steal), softirq, steal. */
function coreTimes(): { busy: number; softirq: number; steal: number; total: number }[] {
  try {
    return Deno.readTextFileSync("/proc/stat").split("\n")
      .filter((line) => /^cpu\d+ /.test(line))
      .map((line) => {
        const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1)
          .map(Number);
        const busy = user + nice + system + irq + softirq;
        return { busy, softirq, steal, total: busy + idle + iowait + steal };
      });
  } catch {
    return [];
  }
}

/** One core's use over a window, as shares of its time. */
export interface CoreUse {
  busy: number;
  softirq: number;
  steal: number;
}

/**
 * How busy each core was over a window, whoever used it: shows when something other than the
 * bench (other jobs, the hypervisor's steal) took time from the server's or the generators' core.
 */
export class CoreMeter {
  #start = coreTimes();

  /** Restarts the window. */
  start(): void {
    this.#start = coreTimes();
  }

  /** Per core since `start()`: busy (softirq included), softirq and steal as shares of time. */
  read(): CoreUse[] {
    return coreTimes().map((now, i) => {
      const was = this.#start[i] ?? now;
      const total = now.total - was.total;
      return total > 0
        ? {
          busy: (now.busy - was.busy) / total,
          softirq: (now.softirq - was.softirq) / total,
          steal: (now.steal - was.steal) / total,
        }
        : { busy: NaN, softirq: NaN, steal: NaN };
    });
  }
}

/** nproc, CPU model, memory and kernel, for the report header. */
export function machineInfo(): { cpus: number; model: string; memory: string; kernel: string } {
  let model = "unknown";
  let memory = "unknown";
  let cpus = navigator.hardwareConcurrency;
  try {
    const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
    cpus = cpuinfo.match(/^processor\s*:/gm)?.length ?? cpus;
    model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? model;
    const mhz = cpuinfo.match(/^cpu MHz\s*:\s*([\d.]+)$/m)?.[1];
    if (mhz) model += ` @ ${Math.round(Number(mhz))} MHz`;
    const kb = Deno.readTextFileSync("/proc/meminfo").match(/^MemTotal:\s+(\d+) kB/m)?.[1];
    if (kb) memory = `${(Number(kb) / 1024 / 1024).toFixed(1)} GiB`;
  } catch { /* not Linux */ }
  return {
    cpus,
    model,
    memory,
    kernel: Deno.osRelease(),
  };
}
