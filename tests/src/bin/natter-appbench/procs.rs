//! The app's processes and their memory, from /proc: the `natter` process (found below the
//! instance's tauri-driver and WebKitWebDriver) and everything it started (WebKit's web and
//! network processes, and any sandbox helper between them).

use std::collections::HashMap;
use std::fs;

use anyhow::{bail, Result};
use natter_e2e::bench_report::kib_field;

/// One process of the app.
#[derive(Debug, Clone)]
pub struct ProcMem {
    pub pid: u32,
    /// Executable name (from the command line; `comm` is cut at 15 characters).
    pub name: String,
    pub pss_kib: u64,
    /// Private (unshared) memory: what this process alone costs, whoever else maps the same
    /// libraries.
    pub uss_kib: u64,
    pub rss_kib: u64,
}

/// The app's processes at one moment, and processes outside it that share WebKit's libraries
/// (they lower every PSS figure: a shared page is split among all who map it).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub procs: Vec<ProcMem>,
    pub others: Vec<String>,
}

/// Parent of every process now: pid → ppid.
fn parents() -> HashMap<u32, u32> {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// `root` and all its descendants, parents before children.
fn tree(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            let mut kids = kids.clone();
            kids.sort_unstable();
            out.extend(kids);
        }
        i += 1;
    }
    out
}

fn name_of(pid: u32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    match argv0.rsplit('/').next() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// The app process below `driver_pid` (tauri-driver → WebKitWebDriver → natter).
pub fn app_pid(driver_pid: u32) -> Result<u32> {
    let parents = parents();
    let found: Vec<u32> = tree(driver_pid, &parents)
        .into_iter()
        .skip(1)
        .filter(|&pid| name_of(pid) == "natter")
        .collect();
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no natter process below tauri-driver {driver_pid}"),
        more => bail!("several natter processes below tauri-driver {driver_pid}: {more:?}"),
    }
}

/// Memory of the app process and every process below it.
pub fn app_tree(app_pid: u32) -> Vec<ProcMem> {
    tree(app_pid, &parents())
        .into_iter()
        .filter_map(|pid| {
            let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            Some(ProcMem {
                pid,
                name: name_of(pid),
                pss_kib: kib_field(&rollup, "Pss:")?,
                uss_kib: kib_field(&rollup, "Private_Clean:").unwrap_or(0)
                    + kib_field(&rollup, "Private_Dirty:").unwrap_or(0),
                rss_kib: kib_field(&status, "VmRSS:").unwrap_or(0),
            })
        })
        .collect()
}

/// The app's processes now, and other WebKit or natter processes on the machine.
pub fn snapshot(app_pid: u32) -> Snapshot {
    let procs = app_tree(app_pid);
    let mut others: Vec<String> = parents()
        .keys()
        .filter(|pid| procs.iter().all(|p| p.pid != **pid))
        .map(|&pid| (pid, name_of(pid)))
        .filter(|(_, name)| {
            name == "natter" || name.starts_with("WebKitWeb") || name == "WebKitNetworkProcess"
        })
        .filter(|(_, name)| name != "WebKitWebDriver")
        .map(|(pid, name)| format!("{name} ({pid})"))
        .collect();
    others.sort();
    Snapshot { procs, others }
}

/// When `pid` started, as Unix time in ms (to the kernel's 10 ms clock tick): its start in
/// ticks after boot (field 22 of /proc/PID/stat) against /proc/uptime, read now.
pub fn started_unix_ms(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let start_ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    // USER_HZ is 100 on every mainstream Linux build.
    Some((now - uptime + start_ticks / 100.0) * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_lists_descendants_only() {
        let parents = HashMap::from([(2, 1), (3, 2), (4, 2), (5, 9), (6, 3)]);
        assert_eq!(tree(2, &parents), vec![2, 3, 4, 6]);
    }

    #[test]
    fn this_process_is_found_with_its_memory() {
        let me = std::process::id();
        let mine = app_tree(me);
        assert_eq!(mine[0].pid, me);
        assert!(mine[0].pss_kib > 0);
        let started = started_unix_ms(me).expect("this process has a start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64()
            * 1000.0;
        assert!(started <= now + 50.0 && started > now - 3_600_000.0);
    }
}
