//! What the bench binaries (`natter-loadbench`, `natter-appbench`) share when they report: each
//! owns one generated section of docs/BENCHMARKS.md between `<!-- NAME:begin -->` and
//! `<!-- NAME:end -->` and replaces only that section, so hand-written analysis around it and
//! other benches' sections stay as they are. Also what every report's header states: the machine,
//! the date and the git revision.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// The opening marker of section `name`.
pub fn begin_marker(name: &str) -> String {
    format!("<!-- {name}:begin -->")
}

/// The closing marker of section `name`.
pub fn end_marker(name: &str) -> String {
    format!("<!-- {name}:end -->")
}

/// `old` with section `name` set to `body`: replaced in place if both markers are there (in
/// order), else appended; a blank `old` becomes a new `# Benchmarks` file.
pub fn with_section(old: &str, name: &str, body: &str) -> String {
    let (begin, end) = (begin_marker(name), end_marker(name));
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let at_end = old.find(&end);
    match (old.find(&begin), at_end) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{}{}", &old[..b], section, &old[e + end.len()..])
        }
        _ if old.trim().is_empty() => format!("# Benchmarks\n\n{section}\n"),
        _ => format!("{}\n\n{section}\n", old.trim_end()),
    }
}

/// Replaces section `name` of the markdown file at `path` with `body` (creating the file or the
/// section if missing).
pub fn write_section(path: &Path, name: &str, body: &str) -> Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
    };
    let new = with_section(&old, name, body);
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("while creating {}", dir.display()))?;
        }
    }
    std::fs::write(path, new).with_context(|| format!("while writing {}", path.display()))
}

/// The machine a bench ran on, for the report's header.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Cores this process may use.
    pub cpus: usize,
    /// CPU model name.
    pub model: String,
    /// Total RAM.
    pub mem_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// When the facts were read ([`utc_now`]).
    pub date: String,
    /// The workspace's revision ([`git_rev`]).
    pub git_rev: String,
}

impl Machine {
    /// Reads the facts from /proc and git now.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            model,
            mem_gib: mem_kib as f64 / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            date: utc_now(),
            git_rev: git_rev(),
        }
    }
}

/// The short git revision of the working directory, or `unknown`.
pub fn git_rev() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    utc_date(secs)
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`, without a date crate (civil-from-days, H. Hinnant).
pub fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        tod / 3600,
        tod % 3600 / 60
    )
}

/// The number after `key` in a `/proc` status-style text (`VmRSS:   1234 kB` → 1234).
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_and_the_text_around_it_kept() {
        let old = "# B\n\nintro\n<!-- x:begin -->\nold\n<!-- x:end -->\n\nanalysis\n";
        let new = with_section(old, "x", "new\n");
        assert_eq!(
            new,
            "# B\n\nintro\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\nanalysis\n"
        );
    }

    #[test]
    fn a_missing_section_is_appended_and_other_sections_untouched() {
        let old = "# B\n<!-- y:begin -->\nkeep\n<!-- y:end -->\n";
        let new = with_section(old, "x", "mine");
        assert_eq!(
            new,
            "# B\n<!-- y:begin -->\nkeep\n<!-- y:end -->\n\n<!-- x:begin -->\nmine\n<!-- x:end -->\n"
        );
        assert_eq!(
            with_section("", "x", "b"),
            "# Benchmarks\n\n<!-- x:begin -->\nb\n<!-- x:end -->\n"
        );
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400 + 3_660), "2000-02-29 01:01 UTC");
    }
}
