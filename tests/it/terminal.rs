//! The interactive run in a real pseudo-terminal: the wizard sees a TTY on stdin, stdout and
//! stderr (and has it as its controlling terminal), draws its prompts there, and reads keys.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Pty {
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
    /// Set when the reader has read everything the program wrote (end of the terminal).
    drained: Arc<std::sync::atomic::AtomicBool>,
    child: std::process::Child,
}

impl Pty {
    fn spawn(args: &[&str]) -> Pty {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; name and termios may be null.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let mut cmd = Command::new(crate::util::BIN);
        cmd.args(args)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = screen.clone();
        let drained = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = drained.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Pty {
            master,
            screen,
            drained,
            child,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    fn wait_for(&self, needle: &str) {
        let start = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {needle:?}; the screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    fn exit_code(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // What it wrote last (the cursor shown again, its last words) may still be
                // in the terminal: read to its end before anyone looks at the screen.
                while !self.drained.load(std::sync::atomic::Ordering::SeqCst)
                    && start.elapsed() < Duration::from_secs(30)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return st.code();
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Pty {
    /// Whether the cursor is visible at the end: every "hide" (ESC [?25l) drawn was
    /// followed by a "show" (ESC [?25h).
    fn cursor_shown(&self) -> bool {
        let t = self.text();
        match (t.rfind("\x1b[?25l"), t.rfind("\x1b[?25h")) {
            (None, _) => true,
            (Some(hide), Some(show)) => show > hide,
            (Some(_), None) => false,
        }
    }

    /// Whether the terminal echoes and reads lines again (what a shell needs after exit).
    fn echo_and_line_mode(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: termios is plain data, filled by tcgetattr on a descriptor owned here
        // (on Linux the master reports the slave's settings).
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0, "tcgetattr failed");
        t.c_lflag & libc::ECHO != 0 && t.c_lflag & libc::ICANON != 0
    }

    /// The screen from where `needle` first appears (everything when it does not).
    fn before(&self, needle: &str) -> String {
        let t = self.text();
        match t.find(needle) {
            Some(i) => t[..i].to_string(),
            None => t,
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch root that looks like a Debian 12 host with a soft-RoCE device, where the
/// preflight plan installs the iSCSI and multipath tools this machine lacks.
fn scratch() -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for d in [
        "etc",
        "sys/class/infiniband/rxe0/ports/1",
        "sys/module/ib_iser",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("sys/class/infiniband/rxe0/ports/1/link_layer"),
        "Ethernet\n",
    )
    .unwrap();
    let state = tmp.path().join("state");
    let (r, s) = (
        root.to_str().unwrap().to_string(),
        state.to_str().unwrap().to_string(),
    );
    (tmp, r, s)
}

/// A scratch root that looks like a Debian 12 host with no RDMA device and no modules: what
/// a person tries the wizard on first.
fn bare() -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    let state = tmp.path().join("state");
    let (r, s) = (
        root.to_str().unwrap().to_string(),
        state.to_str().unwrap().to_string(),
    );
    (tmp, r, s)
}

fn needs_install() -> bool {
    // The plan has something to apply only where a needed program is missing.
    ["iscsiadm", "multipath", "parted", "ping"]
        .iter()
        .any(|p| which::which(p).is_err() && !Path::new(&format!("/usr/sbin/{p}")).exists())
}

/// `run --only preflight` in a PTY, stopped at its confirmation prompt.
fn preflight_at_its_prompt(root: &str, state: &str) -> Pty {
    let pty = Pty::spawn(&[
        "run",
        "--only",
        "preflight",
        "--root",
        root,
        "--state-dir",
        state,
    ]);
    pty.wait_for("Apply 2 changes of step preflight?");
    pty
}

#[test]
fn the_plan_is_shown_and_declining_exits_130_with_state_saved() {
    if !needs_install() {
        eprintln!(
            "note: every tool is installed here, so preflight plans nothing to confirm; skipping"
        );
        return;
    }
    let (_tmp, root, state) = scratch();
    let mut pty = preflight_at_its_prompt(&root, &state);
    let screen = pty.text();
    assert!(screen.contains("[1/9] preflight"), "{screen}");
    assert!(
        screen.contains("apt-get install -y --no-install-recommends"),
        "{screen}"
    );
    pty.send(b"n");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
    pty.wait_for("state is saved");
    // The resume hint repeats the flags that chose this run's root and state.
    pty.wait_for(&format!("--state-dir {state}"));
    pty.wait_for(&format!("--root {root}"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&state).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["facts"]["os"]["id"], "debian");
    assert_eq!(saved["run"]["done"], serde_json::json!([]));
}

#[test]
fn ctrl_c_at_a_prompt_exits_130_and_run_resumes_at_that_step() {
    if !needs_install() {
        eprintln!(
            "note: every tool is installed here, so preflight plans nothing to confirm; skipping"
        );
        return;
    }
    let (_tmp, root, state) = scratch();
    let mut pty = preflight_at_its_prompt(&root, &state);
    pty.send(b"\x03");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
    assert!(Path::new(&state).join("state.json").exists());
    // Run again: it starts at the interrupted step, which shows its plan again.
    let mut pty = preflight_at_its_prompt(&root, &state);
    pty.send(b"\x03");
    assert_eq!(pty.exit_code(), Some(130));
}

#[test]
fn an_interactive_question_offers_its_default_and_validates_what_is_typed() {
    let (_tmp, root, state) = scratch();
    // The verify step asks for the mount point and the size; a dry run then shows the plan.
    let mut pty = Pty::spawn(&[
        "run",
        "--dry-run",
        "--only",
        "verify",
        "--root",
        &root,
        "--state-dir",
        &state,
    ]);
    pty.wait_for("Mount point of the volume");
    // While a person answers, the step's spinner (it ticks every 120 ms) stays off the
    // screen: nothing is drawn over the prompt or the keys typed.
    let shown = pty.text().len();
    std::thread::sleep(Duration::from_millis(600));
    let after = pty.text()[shown..].to_string();
    assert!(
        !after.contains("verify:"),
        "the spinner drew over the prompt: {after:?}"
    );
    pty.send(b"etc\r");
    pty.wait_for("is not an absolute path");
    // Erase the three characters and type a valid path.
    pty.send(b"\x7f\x7f\x7f/mnt/data\r");
    pty.wait_for("How much to write and read back");
    assert!(
        pty.text().contains("256MiB"),
        "the default is offered: {}",
        pty.text()
    );
    pty.send(b"\r");
    pty.wait_for("Dry run: nothing was changed.");
    assert_eq!(pty.exit_code(), Some(0), "{}", pty.text());
    assert!(
        pty.text()
            .contains("write 256MiB to a test file on /mnt/data"),
        "{}",
        pty.text()
    );
    assert!(!Path::new(&state).exists());
}

/// A whole interactive dry run on a host without RDMA devices, stopped at its first choice.
fn bare_dry_run_at_its_first_choice(root: &str, state: &str) -> Pty {
    let pty = Pty::spawn(&["run", "--dry-run", "--root", root, "--state-dir", state]);
    pty.wait_for("Which fabric carries iSER?");
    // Keys are read once the choice is drawn whole.
    pty.wait_for("roce");
    pty
}

#[test]
fn the_first_screen_says_what_happens_and_names_what_a_real_run_would_stop_on() {
    let (_tmp, root, state) = bare();
    let mut pty = bare_dry_run_at_its_first_choice(&root, &state);
    // Everything below is on the screen before the first question is asked.
    let first = pty.before("Which fabric carries iSER?");
    for line in [
        "1. preflight",
        "9. verify",
        "Have at hand: the target IQN",
        "the array's iSER port addresses",
        "which volume to use",
        "To stop: Ctrl-C, or Esc or q",
        "This is a dry run: nothing is changed",
        "A real run would stop at preflight on this host, before any question; to fix first:",
        "  - no RDMA device under /sys/class/infiniband: load the HCA driver",
        "This dry run goes on: it asks and shows the plan of every step",
    ] {
        assert!(
            first.contains(line),
            "{line:?} is not on the first screen:\n{first}"
        );
    }
    // Esc at a choice stops the run as Ctrl-C does, and gives the cursor back.
    pty.send(b"\x1b");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
    pty.wait_for("a dry run changes and saves nothing");
    assert!(
        pty.cursor_shown(),
        "the cursor is left hidden: {:?}",
        pty.text()
    );
    assert!(!Path::new(&state).exists());
}

#[test]
fn ctrl_c_at_a_choice_restores_the_cursor_and_echo() {
    let (_tmp, root, state) = bare();
    let mut pty = bare_dry_run_at_its_first_choice(&root, &state);
    assert!(
        !pty.cursor_shown(),
        "a choice hides the cursor while it is drawn"
    );
    pty.send(b"\x03");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
    assert!(
        pty.cursor_shown(),
        "the cursor is left hidden: {:?}",
        pty.text()
    );
    assert!(
        pty.echo_and_line_mode(),
        "the terminal is left without echo"
    );
}

#[test]
fn an_example_is_not_drawn_as_a_default_and_enter_on_it_says_why_it_asks_again() {
    let (_tmp, root, state) = bare();
    let mut pty = Pty::spawn(&[
        "run",
        "--dry-run",
        "--only",
        "network",
        "--root",
        &root,
        "--state-dir",
        &state,
    ]);
    pty.wait_for("Which fabric carries iSER?");
    pty.wait_for("roce");
    pty.send(b"\r");
    pty.wait_for("Network interface of iSER port 1");
    pty.send(b"ib0\r");
    pty.wait_for("IPv4 address with prefix for ib0");
    pty.wait_for("for example 192.168.130.10/24");
    // Parentheses after a question mean its default, and this question has none.
    assert!(!pty.text().contains("(like 192.168"), "{}", pty.text());
    pty.send(b"\r");
    pty.wait_for("there is no default; the example is not one");
    pty.send(b"192.168.130.10/24\r");
    pty.wait_for("Controller A iSER port address on ib0's subnet");
    pty.send(b"\x03");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
    assert!(pty.cursor_shown());
}

/// The state directory of an interrupted interactive run that was given every answer except
/// the verify step's: `run` resumes with them and asks only the rest.
fn answered_but_verify(state: &str) {
    let mut a: serde_json::Value =
        serde_json::from_str(include_str!("../../templates/answers.json")).unwrap();
    a["volume"].as_object_mut().unwrap().remove("mount_point");
    a.as_object_mut().unwrap().remove("verify");
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(
        Path::new(state).join("answers.json"),
        serde_json::to_vec_pretty(&a).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_interactive_dry_run_records_the_answers_once_they_are_complete_and_says_where() {
    let (tmp, root, state) = scratch();
    answered_but_verify(&state);
    let rec = tmp.path().join("recorded.json");
    let mut pty = Pty::spawn(&[
        "run",
        "--dry-run",
        "--only",
        "verify",
        "--root",
        &root,
        "--state-dir",
        &state,
        "--record-answers",
        rec.to_str().unwrap(),
    ]);
    pty.wait_for("Mount point of the volume");
    pty.send(b"/mnt/data\r");
    pty.wait_for("How much to write and read back");
    pty.send(b"\r");
    pty.wait_for(&format!("Answers recorded in {}", rec.display()));
    assert_eq!(pty.exit_code(), Some(0), "{}", pty.text());
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    assert_eq!(written["volume"]["mount_point"], "/mnt/data");
    assert_eq!(written["verify"]["size"], "256MiB");
    // A dry run writes nothing else: the state directory holds what it held.
    let names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["answers.json"]);
}

#[test]
fn stopping_at_the_first_confirmation_leaves_a_worksheet_with_the_answers() {
    let (_tmp, root, state) = scratch();
    let mut pty = Pty::spawn(&[
        "run",
        "--only",
        "verify",
        "--root",
        &root,
        "--state-dir",
        &state,
    ]);
    pty.wait_for("Mount point of the volume");
    assert!(
        pty.text()
            .contains("Nothing changes before you confirm that step's plan."),
        "{}",
        pty.text()
    );
    pty.send(b"/mnt/data\r");
    pty.wait_for("How much to write and read back");
    pty.send(b"\r");
    pty.wait_for("Apply 1 change of step verify?");
    // q at a yes/no stops as Ctrl-C does: state saved, exit 130, nothing applied.
    pty.send(b"q");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
    pty.wait_for("state is saved");
    assert!(
        pty.cursor_shown(),
        "the cursor is left hidden: {:?}",
        pty.text()
    );
    let out = crate::util::run(&["worksheet", "--state-dir", &state], None);
    let sheet = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{sheet}");
    assert!(
        sheet.contains("| Mount point | /mnt/data |"),
        "the worksheet lacks the answer:\n{sheet}"
    );
}

#[test]
fn a_mount_point_another_volume_holds_is_refused_where_it_is_typed() {
    let (_tmp, root, state) = bare();
    std::fs::write(
        Path::new(&root).join("etc/fstab"),
        "/dev/sdz1 /mnt/data ext4 defaults 0 2\n",
    )
    .unwrap();
    let mut pty = Pty::spawn(&[
        "run",
        "--dry-run",
        "--only",
        "filesystem",
        "--root",
        &root,
        "--state-dir",
        &state,
    ]);
    pty.wait_for("Partition the volume");
    pty.send(b"y");
    // The choice is read once it is drawn whole.
    pty.wait_for("xfs");
    pty.send(b"\r");
    pty.wait_for("Mount point");
    pty.send(b"/mnt/data\r");
    pty.wait_for("/etc/fstab already mounts /dev/sdz1 on /mnt/data (another volume)");
    pty.send(b"/mnt/mine\r");
    pty.wait_for("Mount at boot");
    pty.send(b"\x03");
    assert_eq!(pty.exit_code(), Some(130), "{}", pty.text());
}
