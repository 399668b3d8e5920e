//! The server's resource use as Linux reports it: CPU time from
//! `/proc/PID/stat` and peak resident memory from `/proc/PID/status`, read by
//! the load generator before and after a run when it is given `--server-pid`.

use std::time::Duration;

use super::LoadgenError;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcReading {
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

/// What the server used during a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerUsage {
    /// CPU seconds (user + system) spent during the run.
    pub cpu_seconds: f64,
    /// Peak resident memory of the process at the end of the run, in bytes.
    pub peak_rss_bytes: u64,
}

impl ServerUsage {
    /// The difference between two readings of the same process.
    pub fn between(before: ProcReading, after: ProcReading) -> Self {
        Self {
            cpu_seconds: after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64
                / clock_ticks_per_second() as f64,
            peak_rss_bytes: after.peak_rss_bytes,
        }
    }

    /// CPU cores busy on average over `elapsed`.
    pub fn cores(&self, elapsed: Duration) -> f64 {
        self.cpu_seconds / elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`.
pub fn read(pid: u32) -> Result<ProcReading, LoadgenError> {
    let read = |file: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::read_to_string(&path).map_err(|source| LoadgenError::Proc { path, source })
    };
    let stat = read("stat")?;
    let status = read("status")?;
    let malformed = |path: &str| LoadgenError::ProcFormat {
        path: format!("/proc/{pid}/{path}"),
    };
    Ok(ProcReading {
        cpu_ticks: parse_cpu_ticks(&stat).ok_or_else(|| malformed("stat"))?,
        peak_rss_bytes: parse_peak_rss_bytes(&status).ok_or_else(|| malformed("status"))?,
    })
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may hold spaces and parentheses
/// itself, so fields are counted from the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first one after the name: utime is 11 further on.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` of a `/proc/PID/status` text, in bytes.
pub fn parse_peak_rss_bytes(status: &str) -> Option<u64> {
    status_kib(status, "VmHWM:").map(|kib| kib * 1024)
}

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn parse_rss_bytes(status: &str) -> Option<u64> {
    status_kib(status, "VmRSS:").map(|kib| kib * 1024)
}

/// Resident memory of process `pid` now, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, LoadgenError> {
    status_bytes(pid, "VmRSS:")
}

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`, `VmSize:`, …), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Result<u64, LoadgenError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|source| LoadgenError::Proc {
        path: path.clone(),
        source,
    })?;
    status_kib(&status, field)
        .map(|kib| kib * 1024)
        .ok_or(LoadgenError::ProcFormat { path })
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_last_parenthesis() {
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 21035 0 0 0 \
                    1234 567 0 0 20 0 9 0 123456 1073741824 25000 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17642 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no name here"), None);
    }

    #[test]
    fn peak_rss_is_vmhwm_in_bytes() {
        let status = "Name:\ttracemap\nState:\tS (sleeping)\nVmPeak:\t 1200000 kB\n\
                      VmSize:\t 1100000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(parse_peak_rss_bytes(status), Some(81234 * 1024));
        assert_eq!(parse_rss_bytes(status), Some(80000 * 1024));
        assert_eq!(parse_peak_rss_bytes("Name:\ttracemap\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let reading = read(std::process::id()).unwrap();
        assert!(reading.peak_rss_bytes > 0);
        let usage = ServerUsage::between(reading, reading);
        assert_eq!(usage.cpu_seconds, 0.0);
    }
}
