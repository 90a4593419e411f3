//! `--pin none|same|split`: which CPUs the server and the client (generator) may run on.
//! `same`: both on the first CPU this harness may use (`taskset -c 0` for both); `split`: the
//! server on the first half of those CPUs, the client on the second half (one core each on a
//! 2-core box). Processes the harness starts get the set before they exec (so every thread they
//! create inherits it, and `available_parallelism` inside them sees it); the harness's own client
//! threads set it on themselves.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The CPU sets of a pinned run: (server CPUs, client CPUs).
pub type CpuSets = (Vec<usize>, Vec<usize>);

/// Where server and client run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Pin {
    /// no affinity set: the kernel places both
    #[default]
    None,
    /// server and client on one CPU
    Same,
    /// server on the first half of the CPUs, client on the second half
    Split,
}

impl Pin {
    pub fn name(self) -> &'static str {
        match self {
            Pin::None => "none",
            Pin::Same => "same",
            Pin::Split => "split",
        }
    }

    /// The (server, client) CPU sets out of `cpus` (the CPUs this process may use); None for
    /// `none`.
    pub fn plan(self, cpus: &[usize]) -> Result<Option<CpuSets>, String> {
        match self {
            Pin::None => Ok(None),
            Pin::Same => {
                let c = cpus.first().ok_or("no CPU to pin to")?;
                Ok(Some((vec![*c], vec![*c])))
            }
            Pin::Split if cpus.len() < 2 => Err(format!(
                "--pin split needs 2 CPUs or more; this process may use {}",
                fmt_list(cpus)
            )),
            Pin::Split => {
                let half = cpus.len() / 2;
                Ok(Some((cpus[..half].to_vec(), cpus[half..].to_vec())))
            }
        }
    }
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes a bit inside it (ids checked < CPU_SETSIZE).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            if c < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(c, &mut set);
            }
        }
        set
    }
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a local cpu_set_t; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restricts the calling thread (threads it creates afterwards inherit it) to `cpus`.
pub fn set_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    let set = cpu_set(cpus);
    // SAFETY: sched_setaffinity on the calling thread with a valid cpu_set_t.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `cmd`'s process start on `cpus` (set in the child before exec: every thread it
/// creates inherits it, like `taskset -c`).
pub fn on_exec(cmd: &mut Command, cpus: &[usize]) {
    let set = cpu_set(cpus);
    // SAFETY: sched_setaffinity is async-signal-safe; `set` is copied into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// "0-1,3" for [0, 1, 3].
pub fn fmt_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}-{}", cpus[i], cpus[j])
        } else {
            cpus[i].to_string()
        });
        i = j + 1;
    }
    out.join(",")
}

/// [0, 1, 3] for "0-1,3" (the kernel's `Cpus_allowed_list` format).
pub fn parse_list(s: &str) -> Vec<usize> {
    let mut v = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    v.extend(a..=b);
                }
            }
            None => v.extend(part.trim().parse::<usize>().ok()),
        }
    }
    v
}

/// The threads of process `pid` allowed on a CPU outside `cpus`: "name (tid) on 0-1" each.
/// (ringio pins each shard thread itself to CPU `shard % n`, n = the CPUs it may use at start:
/// a set other than the first n CPUs would be overridden; this check says so.)
pub fn threads_outside(pid: u32, cpus: &[usize]) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let allowed = parse_list(&field("Cpus_allowed_list:"));
        if allowed.iter().any(|c| !cpus.contains(c)) {
            out.push(format!(
                "{} ({}) on {}",
                field("Name:"),
                e.file_name().to_string_lossy(),
                fmt_list(&allowed)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(Pin::None.plan(&[0, 1]), Ok(None));
        assert_eq!(Pin::Same.plan(&[0, 1]), Ok(Some((vec![0], vec![0]))));
        assert_eq!(Pin::Split.plan(&[0, 1]), Ok(Some((vec![0], vec![1]))));
        assert_eq!(
            Pin::Split.plan(&[0, 1, 2, 3, 4]),
            Ok(Some((vec![0, 1], vec![2, 3, 4])))
        );
        assert!(Pin::Split.plan(&[3]).is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-1,3\n"), vec![0, 1, 3]);
        assert_eq!(parse_list("5"), vec![5]);
        assert_eq!(fmt_list(&[0, 1, 3]), "0-1,3");
        assert_eq!(fmt_list(&[2]), "2");
        assert_eq!(fmt_list(&parse_list("0-7,9-10")), "0-7,9-10");
    }

    #[test]
    fn own_thread_is_inside_all_allowed() {
        let all = allowed_cpus();
        assert!(!all.is_empty());
        assert!(threads_outside(std::process::id(), &all).is_empty());
    }
}
