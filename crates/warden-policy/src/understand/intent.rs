//! Intent labels: what an action is *for*, told from what was parsed.
//!
//! Each label is a small set of readings that real attacks use and everyday development does
//! not (the benign set in `tests/data/benign_commands.txt` measures how often they are wrong;
//! `docs/policy.md` quotes the rates). They are deliberately about the parsed reading, not the
//! text: `rm -fr`, `/bin/rm --recursive` and `sh -c 'rm -r x'` are the same recursive delete.

use serde::Serialize;
use serde_json::Value;

use warden_core::Action;

use super::args::{PathArg, block_device};
use super::shell::{Command, INTERPRETERS, Line};

/// The labels a rule's `intents:` may name.
pub const LABELS: &[&str] = &[
    "destructive",
    "exfiltration",
    "credential_access",
    "privilege_escalation",
    "persistence",
    "remote_code",
];

/// One label and what suggested it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intent {
    /// One of [`LABELS`].
    pub label: &'static str,
    /// The reading that suggested it, in words.
    pub why: String,
}

struct Labels(Vec<Intent>);

impl Labels {
    fn add(&mut self, label: &'static str, why: impl FnOnce() -> String) {
        debug_assert!(LABELS.contains(&label));
        if !self.0.iter().any(|i| i.label == label) {
            self.0.push(Intent { label, why: why() });
        }
    }
}

/// Label an action from its parsed line and its path arguments.
pub(crate) fn label(
    action: &Action,
    line: Option<&Line>,
    paths: &[PathArg],
    sql: Option<&super::Sql>,
) -> Vec<Intent> {
    let mut out = Labels(Vec::new());
    if let Some(sql) = sql {
        for (label, why) in &sql.hints {
            out.add(label, || why.clone());
        }
    }
    if let Some(line) = line {
        commands(line, &mut out);
    }
    for p in paths {
        path(p, &mut out);
    }
    if let Some(Value::String(url)) = action.args.get("url")
        && metadata_endpoint(url)
    {
        out.add("credential_access", || {
            format!("`{url}` is a cloud metadata endpoint")
        });
    }
    out.0
}

const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c", "http", "xh"];
const NETWORK_SINKS: &[&str] = &["nc", "ncat", "netcat", "socat", "telnet", "openssl"];
const SHELLS_AND_RUNNERS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "source", "."];

fn commands(line: &Line, out: &mut Labels) {
    let cmds = &line.commands;
    for (i, c) in cmds.iter().enumerate() {
        if c.unknown {
            continue;
        }
        let n = c.name.as_str();
        let word = |w: &str| c.args.iter().any(|a| a == w);
        // ---- destructive
        match n {
            "rm" if c.has(&['r', 'R'], &["recursive"]) => {
                out.add("destructive", || "`rm` with a recursive flag".into());
            }
            "shred" | "wipefs" | "mkswap" => {
                out.add("destructive", || format!("`{n}` destroys data"));
            }
            _ if n.starts_with("mkfs") => {
                out.add("destructive", || format!("`{n}` formats a file system"));
            }
            "dd" if c.args.iter().any(|a| a.starts_with("of=/dev/")) => {
                out.add("destructive", || "`dd` writing to a device".into());
            }
            "find" if word("-delete") => {
                out.add("destructive", || "`find -delete`".into());
            }
            "git"
                if sub(c) == Some("push")
                    && (c.has(&['f'], &["force", "force-with-lease", "mirror"])
                        || c.operands.iter().skip(1).any(|o| o.starts_with('+'))) =>
            {
                out.add("destructive", || {
                    "a force-push rewrites remote history".into()
                });
            }
            "kubectl" | "oc" if sub(c) == Some("delete") => {
                out.add("destructive", || format!("`{n} delete`"));
            }
            "terraform" | "tofu" | "pulumi" if sub(c) == Some("destroy") => {
                out.add("destructive", || format!("`{n} destroy`"));
            }
            "helm" if matches!(sub(c), Some("uninstall" | "delete")) => {
                out.add("destructive", || "`helm uninstall`".into());
            }
            _ => {}
        }
        if c.redirects.iter().any(|(t, w)| *w && block_device(t)) {
            out.add("destructive", || {
                "output redirected onto a block device".into()
            });
        }
        if matches!(n, "psql" | "mysql" | "sqlite3" | "mongosh")
            && c.args.iter().any(|a| destructive_sql(a))
        {
            out.add("destructive", || {
                format!("`{n}` given DROP/TRUNCATE/DELETE without WHERE")
            });
        }
        // ---- exfiltration
        if matches!(n, "curl" | "http" | "xh") {
            let posts_file = c.args.iter().enumerate().any(|(k, a)| {
                let value = |flag: &str| -> Option<&str> {
                    if a == flag {
                        c.args.get(k + 1).map(String::as_str)
                    } else {
                        a.strip_prefix(flag)
                            .and_then(|v| v.strip_prefix('='))
                            .or_else(|| {
                                (flag.len() == 2 && !flag.starts_with("--"))
                                    .then(|| a.strip_prefix(flag))
                                    .flatten()
                            })
                    }
                };
                [
                    "-d",
                    "--data",
                    "--data-binary",
                    "--data-raw",
                    "--data-urlencode",
                    "--json",
                ]
                .iter()
                .filter_map(|f| value(f))
                .any(|v| v.starts_with('@') || v.contains("=@"))
                    || ["-F", "--form"]
                        .iter()
                        .filter_map(|f| value(f))
                        .any(|v| v.contains("=@") || v.contains("=<"))
                    || ["-T", "--upload-file"].iter().any(|f| value(f).is_some())
            });
            if posts_file {
                out.add("exfiltration", || {
                    "`curl` sending a file or standard input".into()
                });
            }
            if c.stage > 0 && c.args.iter().any(|a| a.contains("@-")) {
                out.add("exfiltration", || "piped output posted with `curl`".into());
            }
        }
        if n == "wget" && c.long.iter().any(|l| l == "post-file" || l == "body-file") {
            out.add("exfiltration", || "`wget` posting a file".into());
        }
        if NETWORK_SINKS.contains(&n) && (c.stage > 0 || c.redirects.iter().any(|(_, w)| !*w)) {
            out.add("exfiltration", || format!("data fed into `{n}`"));
        }
        if matches!(n, "scp" | "rsync" | "sftp")
            && c.operands.last().is_some_and(|o| remote(o))
            && c.operands.len() >= 2
        {
            out.add("exfiltration", || format!("`{n}` copying to another host"));
        }
        if c.redirects
            .iter()
            .any(|(t, w)| *w && t.starts_with("/dev/tcp/") || t.starts_with("/dev/udp/"))
        {
            out.add("exfiltration", || {
                "output redirected to a network socket".into()
            });
        }
        if matches!(n, "dig" | "nslookup" | "host" | "ping")
            && c.args.iter().any(|a| a.contains("$("))
        {
            out.add("exfiltration", || {
                format!("`{n}` looking up a name built from a command's output")
            });
        }
        // ---- credential access
        if c.args.iter().any(|a| metadata_endpoint(a)) {
            out.add("credential_access", || "a cloud metadata endpoint".into());
        }
        if n == "security"
            && matches!(
                sub(c),
                Some("find-generic-password" | "find-internet-password" | "dump-keychain")
            )
        {
            out.add("credential_access", || "reading the macOS keychain".into());
        }
        // ---- privilege escalation
        if matches!(n, "sudo" | "su" | "doas" | "pkexec" | "runuser") {
            out.add("privilege_escalation", || format!("`{n}`"));
        }
        if n == "chmod" {
            let mode = c.operands.first().map(String::as_str).unwrap_or("");
            let setuid = (mode.contains('+') && mode.contains('s'))
                || (mode.len() == 4
                    && mode.chars().all(|d| d.is_ascii_digit())
                    && matches!(mode.as_bytes()[0], b'2' | b'4' | b'6'));
            if setuid {
                out.add("privilege_escalation", || {
                    "`chmod` setting setuid/setgid".into()
                });
            }
            if (mode == "777" || mode == "0777" || mode == "a+rwx")
                && c.operands.iter().skip(1).any(|p| system_path(p))
            {
                out.add("privilege_escalation", || {
                    "`chmod 777` on a system path".into()
                });
            }
        }
        if matches!(n, "setcap" | "visudo" | "usermod" | "passwd" | "chpasswd") {
            out.add("privilege_escalation", || format!("`{n}`"));
        }
        // ---- persistence
        if n == "crontab" && !c.has(&['l'], &[]) {
            out.add("persistence", || "`crontab` changing scheduled jobs".into());
        }
        if n == "systemctl" && matches!(sub(c), Some("enable" | "link" | "edit")) {
            out.add("persistence", || "`systemctl enable`".into());
        }
        if n == "launchctl" && matches!(sub(c), Some("load" | "bootstrap" | "submit")) {
            out.add("persistence", || "`launchctl load`".into());
        }
        // ---- remote code
        if SHELLS_AND_RUNNERS.contains(&n) || INTERPRETERS.contains(&n) || n == "eval" {
            if let Some(d) = c
                .runs_output_of
                .iter()
                .find(|d| DOWNLOADERS.contains(&d.as_str()))
            {
                out.add("remote_code", || format!("`{n}` runs what `{d}` downloads"));
            }
            // `curl … | sh`: an interpreter reading a downloader's output from a pipe (without
            // a script file of its own).
            let reads_stdin = c.operands.is_empty() || c.operands.iter().any(|o| o == "-");
            if c.stage > 0
                && reads_stdin
                && cmds[..i].iter().any(|p| {
                    p.pipeline == c.pipeline
                        && p.depth == c.depth
                        && DOWNLOADERS.contains(&p.name.as_str())
                })
            {
                out.add("remote_code", || format!("a download piped into `{n}`"));
            }
        }
    }
    // Download, then execute: `curl -o x URL && sh x`, `wget URL; chmod +x f; ./f`.
    let downloaded: Vec<&str> = cmds
        .iter()
        .filter(|c| DOWNLOADERS.contains(&c.name.as_str()))
        .flat_map(|c| output_files(c))
        .collect();
    if !downloaded.is_empty() {
        let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let ran = cmds.iter().any(|c| {
            let program_is = downloaded
                .iter()
                .any(|d| base(d) == base(&c.name) && c.name.contains('/'));
            let runs_it = (SHELLS_AND_RUNNERS.contains(&c.name.as_str())
                || INTERPRETERS.contains(&c.name.as_str())
                || (c.name == "chmod" && c.operands.first().is_some_and(|m| m.contains('x'))))
                && c.operands
                    .iter()
                    .any(|o| downloaded.iter().any(|d| base(d) == base(o)));
            program_is || runs_it
        });
        if ran {
            out.add("remote_code", || {
                "a downloaded file is made executable or run".into()
            });
        }
    }
}

/// Files a downloader writes (`curl -o f`, `curl -O URL`, `wget URL`, `wget -O f`).
fn output_files(c: &Command) -> Vec<&str> {
    let mut out = Vec::new();
    // curl: `-o f`/`--output f`; wget: `-O f`/`--output-document f` (curl's `-O` takes none).
    let takes_file: &[&str] = if c.name == "curl" {
        &["-o", "--output"]
    } else {
        &["-o", "-O", "--output", "--output-document"]
    };
    for (k, a) in c.args.iter().enumerate() {
        if takes_file.contains(&a.as_str())
            && let Some(f) = c.args.get(k + 1)
        {
            out.push(f.as_str());
        }
    }
    if out.is_empty() && (c.name == "wget" || c.has(&['O'], &["remote-name"])) {
        out.extend(
            c.operands
                .iter()
                .filter(|o| o.contains("://"))
                .map(|u| u.rsplit('/').next().unwrap_or(u)),
        );
    }
    out
}

/// The subcommand: the first operand (`push` in `git -c x=y push`).
fn sub(c: &Command) -> Option<&str> {
    let mut skip_next = false;
    for a in &c.args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if a.starts_with('-') {
            // Options of git, kubectl and security that take a value in the next word.
            skip_next = matches!(
                a.as_str(),
                "-C" | "-c" | "-n" | "--namespace" | "--context" | "--kubeconfig"
            );
            continue;
        }
        return Some(a);
    }
    None
}

fn remote(operand: &str) -> bool {
    // `host:path` or `user@host:path`, not `./a:b` or a URL.
    match operand.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/') && !operand.contains("://"),
        None => false,
    }
}

fn metadata_endpoint(s: &str) -> bool {
    s.contains("169.254.169.254")
        || s.contains("metadata.google.internal")
        || s.contains("fd00:ec2::254")
        || s.contains("169.254.170.2")
}

/// Directories of the operating system (a `chmod 777` there opens it to every user).
fn system_path(p: &str) -> bool {
    p == "/"
        || [
            "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/var", "/opt", "/root",
            "/sys", "/dev",
        ]
        .iter()
        .any(|d| p == *d || p.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
}

/// SQL text that destroys: `DROP`, `TRUNCATE`, `DELETE`/`UPDATE` without `WHERE`.
fn destructive_sql(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    upper.split(';').any(|stmt| {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        match words.first().copied() {
            Some("DROP" | "TRUNCATE") => true,
            Some("DELETE" | "UPDATE") => !words.contains(&"WHERE"),
            _ => false,
        }
    })
}

/// Labels that a path alone suggests.
fn path(p: &PathArg, out: &mut Labels) {
    let text = p.lexical.to_string_lossy();
    let name = p
        .lexical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parts: Vec<String> = p
        .lexical
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let has_dir = |d: &str| parts.iter().any(|x| x == d);
    let credential = has_dir(".ssh")
        || has_dir(".aws")
        || has_dir(".gnupg")
        || has_dir(".kube") && name == "config"
        || has_dir(".docker") && name == "config.json"
        || name == ".env"
        || name.starts_with(".env.") && !name.ends_with(".example") && !name.ends_with(".sample")
        || name.ends_with(".pem")
        || name.ends_with(".p12")
        || name.ends_with(".pfx")
        || name.starts_with("id_rsa")
        || name.starts_with("id_ed25519")
        || name.starts_with("id_ecdsa")
        || matches!(
            name.as_str(),
            ".netrc"
                | ".git-credentials"
                | ".pgpass"
                | "credentials"
                | "shadow"
                | "gshadow"
                | "keychain-db"
        )
        || text.ends_with("gcloud/application_default_credentials.json");
    if credential
        && (name != "credentials" || has_dir(".aws") || has_dir(".config"))
        && (name != "shadow" && name != "gshadow" || text.starts_with("/etc/"))
    {
        let shown = p.raw.clone();
        out.add("credential_access", || {
            format!("`{shown}` holds credentials")
        });
    }
    if p.written {
        let rc = matches!(
            name.as_str(),
            ".bashrc"
                | ".bash_profile"
                | ".bash_login"
                | ".profile"
                | ".zshrc"
                | ".zshenv"
                | ".zprofile"
                | ".zlogin"
                | "config.fish"
                | "authorized_keys"
        );
        let hook = parts.windows(2).any(|w| w[0] == ".git" && w[1] == "hooks");
        let scheduler = text.starts_with("/etc/cron")
            || text.starts_with("/var/spool/cron")
            || text.starts_with("/etc/systemd/")
            || text.contains("/.config/systemd/")
            || text.contains("/Library/LaunchAgents/")
            || text.starts_with("/Library/LaunchDaemons/")
            || text.starts_with("/etc/init.d/")
            || text == "/etc/rc.local"
            || text.starts_with("/etc/profile");
        if rc || hook || scheduler {
            let shown = p.raw.clone();
            out.add("persistence", || {
                format!("writing `{shown}` runs code later")
            });
        }
        if text == "/etc/sudoers" || text.starts_with("/etc/sudoers.d/") || text == "/etc/passwd" {
            let shown = p.raw.clone();
            out.add("privilege_escalation", || format!("writing `{shown}`"));
        }
    }
}
