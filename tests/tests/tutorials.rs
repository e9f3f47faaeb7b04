//! RabbitMQ's six tutorials, written with pika and with kombu (py-amqp), run by pytest against a
//! real rmqd: `conformance/tutorials/` (see `conformance/README.md`).
//!
//! The Python side runs in a virtualenv at `<workspace>/target/conformance-venv`, created on first
//! use and (re)filled with `pip install -r conformance/requirements.txt` whenever that file
//! changes (a copy of it inside the venv is the stamp). No Python 3, or no package index to
//! install from, fails this test: it never passes without having run the tutorials.

#![cfg(unix)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rmqd_tests::TestBroker;

/// The whole pytest run; it takes well under a minute, so this only catches a hang.
const PYTEST_DEADLINE: Duration = Duration::from_secs(300);

/// kombu 5.7 needs Python 3.10 or later.
const MIN_PYTHON: (u32, u32) = (3, 10);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies inside the workspace")
        .to_path_buf()
}

/// `<venv>/bin/python` with `requirements` installed, creating or updating the venv if needed.
fn conformance_venv(root: &Path, requirements: &Path) -> PathBuf {
    let venv = root.join("target").join("conformance-venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("requirements.txt.installed");
    let wanted = fs::read(requirements)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", requirements.display()));

    if !python.exists() {
        let system_python = system_python3();
        eprintln!(
            "tutorials: creating {} with {}",
            venv.display(),
            system_python
        );
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 -m venv: {e}"));
        assert!(
            out.status.success() && python.exists(),
            "`python3 -m venv {}` failed ({}); on Debian/Ubuntu the venv module comes with the \
             python3-venv package.\n{}{}",
            venv.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }

    if fs::read(&stamp).ok().as_deref() != Some(&wanted[..]) {
        // Whatever the venv held was installed for another requirements.txt (or not at all):
        // until pip succeeds, it is not what we want.
        let _ = fs::remove_file(&stamp);
        eprintln!(
            "tutorials: pip install -r {} into {}",
            requirements.display(),
            venv.display()
        );
        let started = Instant::now();
        let out = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            // Fail within minutes, not half an hour, when the index is unreachable.
            .args(["--timeout", "30", "--retries", "2"])
            .arg("--requirement")
            .arg(requirements)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} -m pip: {e}", python.display()));
        assert!(
            out.status.success(),
            "pip could not install {} into {} ({}). Is the package index (PyPI, or PIP_INDEX_URL) \
             reachable from here? The tutorial conformance tests need pika, kombu and pytest.\n\
             --- pip's output ---\n{}{}",
            requirements.display(),
            venv.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        fs::write(&stamp, &wanted)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
        eprintln!("tutorials: pip took {:.1?}", started.elapsed());
    }
    python
}

/// Checks that `python3` is on PATH and recent enough; returns its `--version` line.
fn system_python3() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print('%d %d %s' % (sys.version_info[0], sys.version_info[1], sys.version.split()[0]))",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "python3 is needed to run the tutorial conformance tests (pika, kombu), but it \
                 could not be run: {e}. Install Python >= {}.{} with its venv module.",
                MIN_PYTHON.0, MIN_PYTHON.1
            )
        });
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    let major: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let minor: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let version = words.next().unwrap_or("unknown").to_string();
    assert!(
        out.status.success() && (major, minor) >= MIN_PYTHON,
        "the tutorial conformance tests need Python >= {}.{} (kombu 5.7), python3 is {version} \
         ({}){}",
        MIN_PYTHON.0,
        MIN_PYTHON.1,
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    format!("Python {version}")
}

/// pytest and everything it started (the tutorial programs), as one process group that is
/// killed if the test ends early.
struct ProcessGroup(Child);

impl ProcessGroup {
    fn kill(&mut self) {
        // The group's id is pytest's pid (process_group(0)); `kill -- -PID` reaches the tutorial
        // programs pytest started too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Copies a child's output line by line to this test's output (captured by the test harness
/// unless `--nocapture`, and shown if the test fails).
fn stream(name: &'static str, from: impl Read + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for line in BufReader::new(from).lines() {
                match line {
                    Ok(line) => println!("{line}"),
                    Err(_) => break,
                }
            }
        })
        .expect("spawn an output thread")
}

fn wait_with_deadline(group: &mut ProcessGroup, deadline: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        match group.0.try_wait().expect("wait for pytest") {
            Some(status) => return Some(status),
            None if started.elapsed() > deadline => {
                group.kill();
                return None;
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn rabbitmq_tutorials_with_pika_and_kombu() {
    let root = workspace_root();
    let requirements = root.join("conformance").join("requirements.txt");
    let python = conformance_venv(&root, &requirements);

    let broker = TestBroker::start();
    eprintln!(
        "tutorials: pytest conformance/tutorials against rmqd at {}",
        broker.url()
    );
    let started = Instant::now();
    let mut command = Command::new(&python);
    command
        .args(["-m", "pytest", "conformance/tutorials", "-q"])
        .current_dir(&root)
        .env("AMQP_URL", broker.url())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut pytest = ProcessGroup(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} -m pytest: {e}", python.display())),
    );
    let out = stream("pytest stdout", pytest.0.stdout.take().expect("piped"));
    let err = stream("pytest stderr", pytest.0.stderr.take().expect("piped"));

    let status = wait_with_deadline(&mut pytest, PYTEST_DEADLINE);
    let _ = out.join();
    let _ = err.join();
    let elapsed = started.elapsed();
    drop(broker);

    let status = status.unwrap_or_else(|| {
        panic!("pytest conformance/tutorials did not finish within {PYTEST_DEADLINE:?}; killed it")
    });
    eprintln!("tutorials: pytest took {elapsed:.1?}, {status}");
    match status.code() {
        Some(0) => {}
        Some(5) => panic!(
            "pytest collected no tests in conformance/tutorials (exit status 5): the tutorial \
             tests are missing or failed to import"
        ),
        _ => panic!("pytest conformance/tutorials failed ({status}); its output is above"),
    }
}
