//! What the bench reads from and asks of the operating system: the file
//! descriptor limit, memory and CPU time from `/proc`, the machine's
//! description, and loopback source addresses.

use std::net::{IpAddr, Ipv4Addr};

/// The machine a run was measured on.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus: usize,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// 1-minute load average when the run started (other work on the
    /// machine shows here).
    pub load_before: f64,
    /// 1-minute load average when it ended.
    pub load_after: f64,
}

impl Machine {
    /// Describes this machine now (`load_after` is filled in later).
    pub fn now() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            load_before: load_average(),
            load_after: 0.0,
        }
    }
}

/// The 1-minute load average (0 where unavailable).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Raises the soft (and, where allowed, hard) open-file limit to at least
/// `want`; returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        // Raising the hard limit needs privilege; try, then fall back to
        // the hard limit we have.
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max.max(want),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        let capped = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &capped) == 0 {
            return lim.rlim_max;
        }
        lim.rlim_cur
    }
}

/// Resident memory of process `pid` (`None`: this process), bytes.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime from a `/proc/…/stat` line, in seconds.
fn stat_cpu(stat: &str) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; `rest` starts at 3.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// CPU seconds used by process `pid` and its children (nginx's workers
/// are children of the master), or by this process for `None`.
pub fn process_cpu(pid: Option<u32>) -> Option<f64> {
    let Some(pid) = pid else {
        return stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?);
    };
    let own = stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let children: f64 = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            if ppid == pid { stat_cpu(&stat) } else { None }
        })
        .sum();
    Some(own + children)
}

/// CPU seconds used by this process's threads whose name starts with
/// `prefix` (the in-process server's runtime names its threads).
pub fn threads_cpu(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            if !comm.trim_end().starts_with(prefix) {
                return None;
            }
            stat_cpu(&std::fs::read_to_string(task.path().join("stat")).ok()?)
        })
        .sum()
}

/// Connections per loopback source address: comfortably under the ~28k
/// ephemeral ports Linux gives one source address by default.
pub const PER_SOURCE: usize = 20_000;

/// The source addresses to spread `connections` over: 127.0.0.2, …;
/// empty when one (the default) is enough and `asked` is 0.
pub fn source_addrs(connections: usize, asked: usize) -> Vec<IpAddr> {
    let n = if asked > 0 {
        asked
    } else if connections > PER_SOURCE {
        connections.div_ceil(PER_SOURCE)
    } else {
        0
    };
    (0..n.min(250))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc() {
        assert!(rss_bytes(None).unwrap() > 0);
        assert!(process_cpu(None).is_some());
        assert!(source_addrs(100, 0).is_empty());
        assert_eq!(source_addrs(50_000, 0).len(), 3);
        assert_eq!(
            source_addrs(1, 2)[1],
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))
        );
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(stat_cpu(stat), Some(300.0 / ticks_per_second()));
    }
}
