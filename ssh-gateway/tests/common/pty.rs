//! A program on a pseudo-terminal, and the screen it draws.
//!
//! Tests and the latency bench drive the console the way a person does: a
//! real pty (`openpty`, the child in its own session with the pty as its
//! controlling terminal), keys written to the master side, and the output
//! fed to a terminal emulator (`vt100`) so the test reads the screen, not
//! escape sequences. Resizing sets the window size on the pty, which makes
//! the kernel send SIGWINCH to the child, as a terminal emulator would.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::harness::{DEADLINE, Proc};

/// The screen and when it last changed.
struct Shared {
    parser: vt100::Parser,
    /// Bytes read from the program so far (a counter for "new output").
    bytes: u64,
    closed: bool,
}

pub struct Pty {
    master: File,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    pub proc: Proc,
}

fn winsize(cols: u16, rows: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    /// Starts `cmd` on a new pty of `cols`×`rows` with `TERM=xterm-256color`.
    pub fn spawn(name: &str, cmd: &mut Command, cols: u16, rows: u16) -> Pty {
        Pty::spawn_claiming(name, cmd, (cols, rows), (cols, rows))
    }

    /// Like [`Pty::spawn`], but the pty claims `claimed` (cols, rows) while
    /// the emulated screen that the test reads is `screen`: a hostile client
    /// can claim 65535×65535 without the test allocating it.
    pub fn spawn_claiming(
        name: &str,
        cmd: &mut Command,
        claimed: (u16, u16),
        screen: (u16, u16),
    ) -> Pty {
        let (cols, rows) = claimed;
        let (mut master, mut slave) = (0, 0);
        let ws = winsize(cols, rows);
        // SAFETY: openpty writes two fds into the given ints; no name buffer
        // or termios is passed.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just returned by openpty and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
        cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
        cmd.env("TERM", "xterm-256color");
        // SAFETY: setsid and ioctl are async-signal-safe; they make the pty
        // (already the child's stdin) its controlling terminal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        drop(slave);
        let proc = Proc {
            child,
            name: name.to_string(),
        };
        let master = File::from(master);
        let shared = Arc::new((
            Mutex::new(Shared {
                parser: vt100::Parser::new(screen.1, screen.0, 0),
                bytes: 0,
                closed: false,
            }),
            Condvar::new(),
        ));
        let mut reader = master.try_clone().expect("dup pty master");
        let s2 = shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let (lock, cv) = &*s2;
                let mut s = lock.lock().unwrap();
                if n == 0 {
                    s.closed = true;
                    cv.notify_all();
                    return;
                }
                s.parser.process(&buf[..n]);
                s.bytes += n as u64;
                cv.notify_all();
            }
        });
        Pty {
            master,
            shared,
            proc,
        }
    }

    /// Types `bytes` (keys, as a terminal sends them).
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Sets the terminal size; the kernel tells the program with SIGWINCH.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        {
            let mut s = self.shared.0.lock().unwrap();
            s.parser.screen_mut().set_size(rows, cols);
        }
        self.claim_size(cols, rows);
    }

    /// Sets the size the pty claims, leaving the emulated screen as it is.
    pub fn claim_size(&mut self, cols: u16, rows: u16) {
        let ws = winsize(cols, rows);
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ as _, &ws) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// The screen's text, rows joined by newlines.
    pub fn screen(&self) -> String {
        self.shared.0.lock().unwrap().parser.screen().contents()
    }

    /// One row of the screen.
    pub fn row(&self, row: u16) -> String {
        let s = self.shared.0.lock().unwrap();
        let (_, cols) = s.parser.screen().size();
        s.parser.screen().contents_between(row, 0, row, cols)
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.shared.0.lock().unwrap().bytes
    }

    /// Waits until `f` holds for the screen, for at most `limit`; returns
    /// whether it did. Wakes on every chunk of output, so no polling delay.
    pub fn wait_within(&self, limit: Duration, f: impl Fn(&vt100::Screen) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap();
        loop {
            if f(s.parser.screen()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || s.closed {
                return f(s.parser.screen());
            }
            s = cv.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Waits until `f` holds for the screen, or fails the test showing it.
    pub fn wait(&self, what: &str, f: impl Fn(&vt100::Screen) -> bool) {
        if !self.wait_within(DEADLINE, f) {
            panic!(
                "timed out waiting for {what}; the screen:\n{}",
                self.screen()
            );
        }
    }

    /// Waits until the screen shows `text`.
    pub fn wait_text(&self, text: &str) {
        self.wait(&format!("{text:?} on screen"), |s| {
            s.contents().contains(text)
        });
    }

    /// Waits for the program to exit; its status code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(st)) = self.proc.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not exit; the screen:\n{}",
            self.proc.name,
            self.screen()
        );
    }
}
