//! `docs/migrating.md` keeps telling the truth:
//!
//! - every fenced code block in it (except ` ```text `) is, line for line, part of a file under
//!   `tests/e2e/migrating/` that the end-to-end scenario `tests/e2e/node/migrating.mjs` names and
//!   runs; a ` ```toml ` block is instead a configuration the `herald` binary starts with;
//! - every Herald flag (`--…`), environment variable (`HERALD_…`) and TOML key named in the Herald
//!   column of its tables exists: flags and variables in `herald serve --help`, keys in the
//!   binary's configuration parser (an unknown key is an error there, so a key that is accepted
//!   with a wrong value's type error, rather than an "unknown field" error, exists).
//!
//! Runs in `cargo test` with nothing installed; the scenario itself needs the e2e clients.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const GUIDE: &str = "docs/migrating.md";
const SCENARIO: &str = "crates/herald/tests/e2e/node/migrating.mjs";
const SNIPPETS: &str = "crates/herald/tests/e2e/migrating";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// A fenced code block: its language tag, its lines (fence indentation removed) and where it starts.
struct Block {
    lang: String,
    lines: Vec<String>,
    line: usize,
}

fn code_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    open = Some((indent, Block { lang: lang.trim().to_owned(), lines: Vec::new(), line: i + 1 }));
                }
            }
            Some((fence_indent, mut block)) => {
                if trimmed.starts_with("```") {
                    blocks.push(block);
                } else {
                    let cut = line.len().min(fence_indent).min(indent);
                    block.lines.push(line[cut..].to_owned());
                    open = Some((fence_indent, block));
                }
            }
        }
    }
    assert!(open.is_none(), "{GUIDE}: a code block is never closed");
    blocks
}

/// `lines` without blank lines around them, trailing spaces, or the indentation they share.
fn normalized<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let lines: Vec<&str> = lines.iter().map(|l| l.as_ref().trim_end()).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    let lines = &lines[start..end];
    let indent = lines.iter().filter(|l| !l.is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    lines.iter().map(|l| if l.is_empty() { String::new() } else { l[indent..].to_owned() }).collect()
}

/// Whether `block` is a run of consecutive lines of `text`, up to shared indentation.
fn contains(text: &str, block: &[String]) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    !block.is_empty() && lines.len() >= block.len() && lines.windows(block.len()).any(|w| normalized(w) == block)
}

/// Every file under `dir`, with its path relative to `root`.
fn files_under(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, root, out);
        } else {
            let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
            out.push((relative, read(&path)));
        }
    }
}

#[test]
fn every_code_block_of_the_guide_is_a_snippet_the_e2e_scenario_runs() {
    let root = repo();
    let guide = read(&root.join(GUIDE));
    let scenario = read(&root.join(SCENARIO));
    let snippet_dir = root.join(SNIPPETS);
    let mut snippets = Vec::new();
    files_under(&snippet_dir, &snippet_dir, &mut snippets);

    let mut problems = Vec::new();
    let mut checked = 0;
    for block in code_blocks(&guide) {
        if block.lang == "text" || block.lang == "toml" {
            continue;
        }
        checked += 1;
        let wanted = normalized(&block.lines);
        let found: Vec<&str> =
            snippets.iter().filter(|(_, text)| contains(text, &wanted)).map(|(path, _)| path.as_str()).collect();
        let shown = format!("{GUIDE}:{} (```{}, first line {:?})", block.line, block.lang, wanted.first());
        if found.is_empty() {
            problems.push(format!(
                "{shown} is in no file under {SNIPPETS}/: copy the block there exactly (or fix the \
                 guide), so that the e2e scenario runs what the guide shows"
            ));
        } else if !found.iter().any(|path| scenario.contains(&format!("'{path}'"))) {
            problems.push(format!(
                "{shown} is only in {found:?}, which {SCENARIO} does not name in SNIPPETS (so nothing runs it)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 10, "{GUIDE}: only {checked} code blocks found; is the fence parsing broken?");
}

/// Start `herald serve` with `args` on 127.0.0.1, port 0; `Ok` once it logs that it listens, `Err`
/// with its output if it exits first.
fn herald_starts(args: &[&str]) -> Result<(), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("serve")
        .args(args)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env_remove("HERALD_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the herald binary");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let listening = line.contains("listening on ");
            log.push_str(&line);
            log.push('\n');
            if listening {
                let _ = tx.send(Ok(()));
            }
        }
        let _ = tx.send(Err(log));
    });
    let outcome = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| Err("no answer within 20 s".into()));
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

#[test]
fn every_toml_block_of_the_guide_starts_herald() {
    let guide = read(&repo().join(GUIDE));
    let dir = tempdir("toml");
    let mut checked = 0;
    for block in code_blocks(&guide).into_iter().filter(|b| b.lang == "toml") {
        let file = dir.join(format!("line-{}.toml", block.line));
        std::fs::write(&file, block.lines.join("\n")).expect("write the TOML block");
        if let Err(log) = herald_starts(&["--config", file.to_str().expect("a UTF-8 path")]) {
            panic!("{GUIDE}:{}: herald does not start with this ```toml block:\n{log}", block.line);
        }
        checked += 1;
    }
    assert!(checked > 0, "{GUIDE} has no ```toml block");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-docs-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// The code spans of the column headed "Herald" in every table of `markdown`, with their line.
fn herald_column_spans(markdown: &str) -> Vec<(usize, String)> {
    let mut spans = Vec::new();
    let mut column: Option<usize> = None;
    for (i, line) in markdown.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            column = None;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        match column {
            None => column = Some(cells.iter().position(|c| *c == "Herald").unwrap_or(usize::MAX)),
            Some(c) if c < cells.len() && !cells[c].starts_with("---") => {
                spans.extend(cells[c].split('`').skip(1).step_by(2).map(|s| (i + 1, s.to_owned())));
            }
            Some(_) => {}
        }
    }
    spans
}

#[test]
fn every_herald_setting_named_in_the_guides_tables_exists() {
    let guide = read(&repo().join(GUIDE));
    let help =
        Command::new(env!("CARGO_BIN_EXE_herald")).args(["serve", "--help"]).output().expect("run herald serve --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let dir = tempdir("keys");

    let (mut flags, mut variables, mut keys) = (0, 0, 0);
    let mut problems = Vec::new();
    for (line, span) in herald_column_spans(&guide) {
        // `name = value` names `name`; a span with a space otherwise is prose or a value.
        let name = span.split(" = ").next().unwrap_or(&span).trim();
        if name.starts_with("--") {
            let flag = name.split_whitespace().next().unwrap_or(name);
            flags += 1;
            if !help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).any(|word| word == flag) {
                problems.push(format!("{GUIDE}:{line}: `{flag}` is not a flag of `herald serve` (see --help)"));
            }
        } else if name.starts_with("HERALD_") {
            variables += 1;
            // `[env: NAME=value]`, or `[env: NAME]` where clap hides the value (the secret).
            if !help.contains(&format!("[env: {name}=")) && !help.contains(&format!("[env: {name}]")) {
                problems.push(format!("{GUIDE}:{line}: `{name}` is not an environment variable of `herald serve`"));
            }
        } else if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            keys += 1;
            if let Err(why) = toml_key_exists(&dir, name) {
                problems.push(format!("{GUIDE}:{line}: `{name}` is not a key of Herald's TOML file: {why}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        flags >= 5 && variables >= 5 && keys >= 10,
        "too few settings found ({flags} flags, {variables} variables, {keys} TOML keys): is the table parsing broken?"
    );
}

/// Whether `key` is accepted at the top of the TOML file, in `[[apps]]` or in `[[apps.webhooks]]`:
/// given a value of the wrong type (an inline table), the binary must refuse it for its type, not
/// as an unknown field.
fn toml_key_exists(dir: &Path, key: &str) -> Result<(), String> {
    // The fields a table needs anyway, except the one under test (a key given twice is a parse error).
    let fields = |pairs: &[(&str, &str)]| -> String {
        pairs.iter().filter(|(name, _)| *name != key).map(|(name, value)| format!("{name} = {value}\n")).collect()
    };
    let app = format!("[[apps]]\n{}", fields(&[("id", "\"1\""), ("key", "\"k\""), ("secret", "\"s\"")]));
    let webhook = format!("[[apps.webhooks]]\n{}", fields(&[("url", "\"http://127.0.0.1:9/\"")]));
    let placements =
        [format!("{key} = {{}}\n{app}"), format!("{app}{key} = {{}}\n"), format!("{app}{webhook}{key} = {{}}\n")];
    let mut answers = Vec::new();
    for (i, text) in placements.iter().enumerate() {
        let file = dir.join(format!("{key}-{i}.toml"));
        std::fs::write(&file, text).expect("write a TOML file");
        match herald_starts(&["--config", file.to_str().expect("a UTF-8 path")]) {
            // Whatever the key is, it took an inline table: it exists.
            Ok(()) => return Ok(()),
            Err(log) if log.contains("invalid type") => return Ok(()),
            Err(log) => {
                let why = log.lines().find(|l| l.contains("unknown field")).or_else(|| log.lines().next());
                answers.push(why.unwrap_or("(no output)").trim().to_owned());
            }
        }
    }
    Err(answers.join(" / "))
}
