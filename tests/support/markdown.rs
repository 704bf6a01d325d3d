//! Runs the snippets of a Markdown page as a reader would: every ```` ```sh ````
//! block (also `bash`, `shell`) of the chosen sections, top to bottom, as ONE
//! bash session (`set -euo pipefail`) in a fresh empty directory, with the
//! `jwtkit` built for this test run first on `PATH`; every ```` ```python ````
//! block as a standalone script run at its place in the page, by `python3`,
//! which is the test venv's Python with PyJWT. Other blocks (`rust`: doctests;
//! `text`, `toml`, …) are not run here.
//!
//! A failing snippet names the page, the line of its block and the line
//! that failed. Edits (`MarkdownSession::edit`) adapt a page to the test
//! machine (a fixed port, a `cargo install` line); each must match, so a
//! page that changed fails loudly instead of running something else.
//!
//! ```ignore
//! let run = MarkdownSession::new("docs/from-pyjwt.md").run()?;
//! run.assert_stdout_contains("{\"valid\":true");
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One fenced code block of a page.
#[derive(Debug, Clone)]
pub struct Block {
    /// The line of the opening fence, 1-based.
    pub line: usize,
    /// The first word of the info string (`sh`, `python`, `rust`, …).
    pub lang: String,
    /// The headings the block sits under, outermost first (without `#`s).
    pub headings: Vec<String>,
    /// The code, each line ending in `\n`.
    pub code: String,
}

impl Block {
    /// A shell block: run as part of the bash session.
    pub fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "bash" | "shell")
    }

    /// A Python block: run as a standalone script.
    pub fn is_python(&self) -> bool {
        matches!(self.lang.as_str(), "python" | "py" | "python3")
    }

    /// Whether the block sits under a heading named `section` (at any level).
    pub fn is_under(&self, section: &str) -> bool {
        self.headings.iter().any(|h| h == section)
    }
}

/// The fenced code blocks of `markdown`, in order. Headings inside code
/// blocks (shell comments) are not headings.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    // (level, text) of the headings in force.
    let mut headings: Vec<(usize, String)> = Vec::new();
    // (fence marker, block being collected)
    let mut open: Option<(String, Block)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some((fence, block)) = open.as_mut() {
            let closes = indent < 4
                && trimmed.starts_with(fence.as_str())
                && trimmed
                    .trim_end()
                    .chars()
                    .all(|c| c == fence.as_bytes()[0] as char);
            if closes {
                out.push(block.clone());
                open = None;
            } else {
                block.code.push_str(line);
                block.code.push('\n');
            }
            continue;
        }
        let marker = trimmed.chars().next().unwrap_or(' ');
        let fence: String = trimmed.chars().take_while(|&c| c == marker).collect();
        // CommonMark: a backtick fence's info string has no backtick (else
        // the line is inline code, like ```` ```sh ```` in prose).
        let is_fence = (marker == '`' || marker == '~')
            && fence.len() >= 3
            && !(marker == '`' && trimmed[fence.len()..].contains('`'));
        if indent < 4 && is_fence {
            let lang = trimmed[fence.len()..]
                .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                .next()
                .unwrap_or("")
                .to_owned();
            let block = Block {
                line: i + 1,
                lang,
                headings: headings.iter().map(|(_, h)| h.clone()).collect(),
                code: String::new(),
            };
            open = Some((fence, block));
            continue;
        }
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        if indent < 4 && (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            let text = trimmed[level..]
                .trim()
                .trim_end_matches('#')
                .trim()
                .to_owned();
            headings.retain(|(l, _)| *l < level);
            headings.push((level, text));
        }
    }
    if let Some((_, block)) = open {
        panic!(
            "the code block opened at line {} is never closed",
            block.line
        );
    }
    out
}

/// A change made to a page's snippets before running them.
#[derive(Debug, Clone)]
enum Edit {
    /// Every occurrence of `find` becomes `with`.
    Replace { find: String, with: String },
    /// Each whole line containing `find` becomes `with` (one line, so the
    /// page's line numbers still hold for the lines after it).
    Line { find: String, with: String },
}

/// How long a whole session may run.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(240);

/// A page's snippets to run as one session.
pub struct MarkdownSession {
    page: PathBuf,
    shown: String,
    sections: Option<Vec<String>>,
    edits: Vec<Edit>,
    epilogue: Vec<String>,
    deadline: Duration,
    /// Programs put on the session's PATH under a name (`bao`).
    tools: Vec<(String, PathBuf)>,
}

/// A finished session: its directory (kept until this is dropped) and output.
pub struct SessionRun {
    /// The page, as named in messages.
    pub page: String,
    dir: tempfile::TempDir,
    /// Everything the snippets printed on stdout.
    pub stdout: String,
    /// Everything they printed on stderr.
    pub stderr: String,
    /// The opening-fence line of each block that ran, in order.
    pub blocks_run: Vec<usize>,
}

impl SessionRun {
    /// The directory the snippets ran in.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Panics, showing the output, unless stdout contains `fragment`.
    pub fn assert_stdout_contains(&self, fragment: &str) {
        assert!(
            self.stdout.contains(fragment),
            "{}: the snippets' output lacks {fragment:?} (which the page promises)\n--- stdout\n{}\n--- stderr\n{}",
            self.page,
            self.stdout,
            self.stderr
        );
    }
}

/// The workspace root (this file is `tests/support/markdown.rs`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/jwtkit-cli sits two levels below the workspace root")
        .to_path_buf()
}

/// Runs every shell and Python snippet of `page` (a path relative to the
/// workspace root), or only those under the headings in `sections`, as one
/// session. `None` when a tool the page needs is missing locally (a loud
/// skip; in CI a failure).
pub fn run_markdown_session(page: &str, sections: Option<&[&str]>) -> Option<SessionRun> {
    let mut session = MarkdownSession::new(page);
    if let Some(sections) = sections {
        session = session.sections(sections);
    }
    session.run()
}

impl MarkdownSession {
    /// The snippets of `page`, a path relative to the workspace root.
    pub fn new(page: &str) -> MarkdownSession {
        MarkdownSession::at(&workspace_root().join(page), page)
    }

    /// The snippets of the page at `path`, called `shown` in messages.
    pub fn at(path: &Path, shown: &str) -> MarkdownSession {
        MarkdownSession {
            page: path.to_path_buf(),
            shown: shown.to_owned(),
            sections: None,
            edits: Vec::new(),
            epilogue: Vec::new(),
            deadline: SESSION_DEADLINE,
            tools: Vec::new(),
        }
    }

    /// Puts `program` on the session's PATH as `name` (a symlink), for a
    /// page that runs a server's own CLI (`bao`).
    pub fn tool(mut self, name: &str, program: &Path) -> Self {
        self.tools.push((name.to_owned(), program.to_owned()));
        self
    }

    /// How long the whole session may run (default [`SESSION_DEADLINE`]).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Only the blocks under these headings (any level; blocks under their
    /// sub-headings included).
    pub fn sections(mut self, sections: &[&str]) -> Self {
        self.sections = Some(sections.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Replaces every occurrence of `find` in the selected blocks. `with`
    /// has as many lines as `find`, so the page's line numbers still hold.
    pub fn replace(mut self, find: &str, with: &str) -> Self {
        assert_eq!(
            find.lines().count(),
            with.lines().count(),
            "an edit keeps the line count"
        );
        self.edits.push(Edit::Replace {
            find: find.into(),
            with: with.into(),
        });
        self
    }

    /// Replaces each whole line containing `find` by the one line `with`.
    pub fn replace_line(mut self, find: &str, with: &str) -> Self {
        assert!(!with.contains('\n'), "replace_line keeps one line");
        self.edits.push(Edit::Line {
            find: find.into(),
            with: with.into(),
        });
        self
    }

    /// A line the harness runs after the page's last block (a check the
    /// page's prose promises but no snippet prints).
    pub fn then(mut self, line: &str) -> Self {
        self.epilogue.push(line.to_owned());
        self
    }

    /// The selected blocks of the page, edits applied.
    fn selected(&self) -> Vec<Block> {
        let markdown = std::fs::read_to_string(&self.page)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.shown));
        let mut selected: Vec<Block> = blocks(&markdown)
            .into_iter()
            .filter(|b| b.is_shell() || b.is_python())
            .filter(|b| match &self.sections {
                None => true,
                Some(sections) => sections.iter().any(|s| b.is_under(s)),
            })
            .collect();
        assert!(
            !selected.is_empty(),
            "{}: no ```sh or ```python block{} — was a heading renamed? Update tests/doc_snippets.rs",
            self.shown,
            match &self.sections {
                Some(s) => format!(" under the heading(s) {s:?}"),
                None => String::new(),
            }
        );
        for edit in &self.edits {
            let mut matched = false;
            for block in &mut selected {
                match edit {
                    Edit::Replace { find, with } => {
                        if block.code.contains(find.as_str()) {
                            matched = true;
                            block.code = block.code.replace(find.as_str(), with);
                        }
                    }
                    Edit::Line { find, with } => {
                        let mut code = String::new();
                        for line in block.code.lines() {
                            if line.contains(find.as_str()) {
                                matched = true;
                                code.push_str(with);
                            } else {
                                code.push_str(line);
                            }
                            code.push('\n');
                        }
                        block.code = code;
                    }
                }
            }
            assert!(
                matched,
                "{}: the test's edit {edit:?} no longer matches any selected snippet; \
                 the page changed, so update the edit in tests/doc_snippets.rs",
                self.shown
            );
        }
        selected
    }

    /// Runs the session. Panics, naming the page and line, when a snippet
    /// fails or the session outlives its deadline.
    pub fn run(self) -> Option<SessionRun> {
        let selected = self.selected();
        let all_code: String = selected.iter().map(|b| b.code.as_str()).collect();
        let needs_python = selected.iter().any(|b| b.is_python()) || all_code.contains("python");
        let python = if needs_python {
            Some(super::python()?)
        } else {
            None
        };
        for (tool, why) in [
            (
                "openssl",
                "the page makes keys with openssl (Debian: apt-get install openssl)",
            ),
            (
                "curl",
                "the page talks HTTP with curl (Debian: apt-get install curl)",
            ),
        ] {
            if all_code.contains(tool) {
                jwtkit_test_support::tool(tool, why)?;
            }
        }

        let dir = tempfile::tempdir().expect("a temporary directory");
        let files = SessionFiles::new(dir.path());
        files.put_on_path(python.as_deref());
        for (name, program) in &self.tools {
            std::os::unix::fs::symlink(program, files.bin.join(name))
                .unwrap_or_else(|e| panic!("put {name} on the session's PATH: {e}"));
        }
        let script = Script::new(&self.shown, &selected, &self.epilogue, &files.meta);
        std::fs::write(&files.script, &script.text).expect("write the session script");

        let status = self.execute(&files);
        let progress = std::fs::read_to_string(&files.progress).unwrap_or_default();
        if !status.success() || progress.lines().last() != Some("done") {
            let msg = script.failure(&self.shown, &selected, &files, status, &progress);
            panic!("{msg}\n{}", tails(&files.stdout, &files.stderr));
        }
        let stdout = std::fs::read_to_string(&files.stdout).unwrap_or_default();
        let stderr = std::fs::read_to_string(&files.stderr).unwrap_or_default();
        assert!(
            !stderr.contains("panicked"),
            "{}: jwtkit panicked:\n{stderr}",
            self.shown
        );
        Some(SessionRun {
            page: self.shown,
            dir,
            stdout,
            stderr,
            blocks_run: progress
                .lines()
                .filter_map(|l| l.rsplit(':').next()?.parse().ok())
                .collect(),
        })
    }

    /// Runs the session script in its own process group, bounded by the
    /// deadline; whatever it leaves in the background is killed.
    fn execute(&self, files: &SessionFiles) -> ExitStatus {
        let path = match std::env::var_os("PATH") {
            Some(p) => {
                let mut paths = vec![files.bin.clone()];
                paths.extend(std::env::split_paths(&p));
                std::env::join_paths(paths).expect("PATH")
            }
            None => files.bin.clone().into_os_string(),
        };
        let mut cmd = Command::new("bash");
        cmd.arg(&files.script)
            .current_dir(&files.work)
            .env("PATH", path)
            .env("JWTKIT_SNIPPET_DIR", &files.meta)
            .env("JWTKIT_SNIPPET_PROGRESS", &files.progress)
            .env("JWTKIT_SNIPPET_STATUS", &files.status)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&files.stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&files.stderr).expect("stderr file"));
        // A reader's shell has none of the tests' own settings.
        for var in [
            "JWTKIT_ADMIN_TOKEN",
            "JWTKIT_REFRESH_URL",
            "JWTKIT_REFRESH_KEY",
            "JWTKIT_LOG",
            "JWT_SECRET",
        ] {
            cmd.env_remove(var);
        }
        // Its own process group: a background server the page starts is
        // killed with the session, whatever happens.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("start bash");
        let group = child.id();
        let kill_group = || {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for bash") {
                break status;
            }
            if started.elapsed() > self.deadline {
                kill_group();
                let _ = child.wait();
                let last = std::fs::read_to_string(&files.progress).unwrap_or_default();
                panic!(
                    "{}: the session was still running after {:?}, in the block at {}\n{}",
                    self.shown,
                    self.deadline,
                    last.lines().last().unwrap_or("(none started)"),
                    tails(&files.stdout, &files.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        kill_group();
        status
    }
}

/// The layout of a session's temporary directory: `work/` (where the
/// snippets run, empty at the start), `bin/` (first on `PATH`) and
/// `snippets/` (the script, the Python files, the output and the progress).
struct SessionFiles {
    work: PathBuf,
    bin: PathBuf,
    meta: PathBuf,
    script: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    progress: PathBuf,
    status: PathBuf,
}

impl SessionFiles {
    fn new(root: &Path) -> SessionFiles {
        let meta = root.join("snippets");
        let files = SessionFiles {
            work: root.join("work"),
            bin: root.join("bin"),
            script: meta.join("session.sh"),
            stdout: meta.join("stdout"),
            stderr: meta.join("stderr"),
            progress: meta.join("progress"),
            status: meta.join("status"),
            meta,
        };
        for d in [&files.work, &files.bin, &files.meta] {
            std::fs::create_dir(d).expect("create a session directory");
        }
        files
    }

    /// `jwtkit` (this test run's) and `python3`/`python` (the test venv's)
    /// in `bin/`.
    fn put_on_path(&self, python: Option<&Path>) {
        std::os::unix::fs::symlink(super::jwtkit_bin(), self.bin.join("jwtkit"))
            .expect("put jwtkit on the session's PATH");
        let Some(python) = python else { return };
        let shown = python.display().to_string();
        assert!(!shown.contains('\''), "a python path with a quote: {shown}");
        // A wrapper, not a symlink: a venv's python finds its packages
        // through the path it was started as.
        for name in ["python3", "python"] {
            let wrapper = self.bin.join(name);
            std::fs::write(&wrapper, format!("#!/bin/sh\nexec '{shown}' \"$@\"\n"))
                .expect("write the python wrapper");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
                .expect("make the python wrapper executable");
        }
    }
}

/// The bash script of a session, and for each of its lines where it came
/// from (to name the page line that failed).
struct Script {
    text: String,
    origin: Vec<Origin>,
}

impl Script {
    /// The prologue, then each block (a Python block as a file in `meta`,
    /// run by one line), then the epilogue.
    fn new(shown: &str, selected: &[Block], epilogue: &[String], meta: &Path) -> Script {
        let mut script = Script {
            text: String::new(),
            origin: Vec::new(),
        };
        for line in PROLOGUE.lines() {
            script.push(line, Origin::Harness);
        }
        for (n, block) in selected.iter().enumerate() {
            script.push(
                &format!("__jwtkit_block '{shown}:{}'", block.line),
                Origin::Block(n, None),
            );
            if block.is_python() {
                // Named after the page and line, as Python tracebacks show it.
                let name = format!("{}-L{}.py", shown.replace('/', "_"), block.line);
                std::fs::write(meta.join(&name), &block.code).expect("write the python snippet");
                script.push(
                    &format!("python3 \"$JWTKIT_SNIPPET_DIR/{name}\""),
                    Origin::Block(n, None),
                );
            } else {
                for (k, line) in block.code.lines().enumerate() {
                    script.push(line, Origin::Block(n, Some(block.line + 1 + k)));
                }
            }
        }
        for line in epilogue {
            script.push(line, Origin::Epilogue);
        }
        script.push("__jwtkit_block done", Origin::Harness);
        script
    }

    fn push(&mut self, line: &str, from: Origin) {
        self.text.push_str(line);
        self.text.push('\n');
        self.origin.push(from);
    }

    /// What failed, for the panic message: the page, the block's line, the
    /// failing line and its text.
    fn failure(
        &self,
        shown: &str,
        selected: &[Block],
        files: &SessionFiles,
        status: ExitStatus,
        progress: &str,
    ) -> String {
        let recorded = std::fs::read_to_string(&files.status).unwrap_or_default();
        let mut recorded = recorded.split_whitespace();
        let mut script_line: Option<usize> = recorded.next().and_then(|l| l.parse().ok());
        let rc = recorded
            .next()
            .map(str::to_owned)
            .or_else(|| status.code().map(|c| c.to_string()))
            .unwrap_or_else(|| "?".into());
        // Errors the ERR trap does not see (`set -u`'s unbound variable, a
        // syntax error) are reported by bash as "session.sh: line N: …".
        if script_line.is_none() {
            let stderr = std::fs::read_to_string(&files.stderr).unwrap_or_default();
            script_line = stderr.lines().rev().find_map(|l| {
                let rest = l.split("session.sh: line ").nth(1)?;
                rest.split(':').next()?.parse().ok()
            });
        }
        let found = script_line.filter(|&l| l >= 1).and_then(|l| {
            Some((
                self.text.lines().nth(l - 1)?.trim(),
                self.origin.get(l - 1)?,
            ))
        });
        match found {
            Some((text, Origin::Block(n, page_line))) => {
                let block = &selected[*n];
                let mut msg = format!(
                    "{shown}: the ```{} block at line {} failed (exit {rc})",
                    block.lang, block.line
                );
                match page_line {
                    Some(p) => {
                        let _ = write!(msg, " at line {p}: `{text}`");
                    }
                    None if block.is_python() => {
                        msg.push_str(" (the Python traceback below names the block's lines)");
                    }
                    None => {}
                }
                msg
            }
            Some((text, Origin::Epilogue)) => format!(
                "{shown}: a check the test adds after the page's snippets failed (exit {rc}): `{text}`"
            ),
            _ => format!(
                "{shown}: the session stopped ({status}) in the block at {}",
                progress.lines().last().unwrap_or("(none started)")
            ),
        }
    }
}

/// Where a line of the session script comes from.
enum Origin {
    Harness,
    /// Block index, and the page line for shell lines.
    Block(usize, Option<usize>),
    Epilogue,
}

/// Set up before the page's first block: strict mode, the failing line
/// recorded for the message, background jobs stopped at the end.
const PROLOGUE: &str = r#"set -Eeuo pipefail
trap '__jwtkit_rc=$?; printf "%s %s\n" "$LINENO" "$__jwtkit_rc" >"$JWTKIT_SNIPPET_STATUS"' ERR
trap '__jwtkit_jobs=$(jobs -p); if [ -n "$__jwtkit_jobs" ]; then kill $__jwtkit_jobs 2>/dev/null || true; fi' EXIT
__jwtkit_block() { printf '%s\n' "$1" >>"$JWTKIT_SNIPPET_PROGRESS"; }"#;

/// The last lines of both output files, for a failure message.
fn tails(stdout: &Path, stderr: &Path) -> String {
    let tail = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    format!(
        "--- stdout (last 40 lines)\n{}\n--- stderr (last 40 lines)\n{}",
        tail(stdout),
        tail(stderr)
    )
}
