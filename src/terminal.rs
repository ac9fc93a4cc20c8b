//! Reading a secret from whoever runs a command: on a terminal, prompted
//! and with the terminal's echo off, so it is neither shown as it is typed
//! nor left on the screen; piped, one line as it comes.

use std::io::{self, BufRead, IsTerminal, Write};

/// One secret. On a terminal it is asked for twice, and two different
/// answers are an error: a typo nobody can see would otherwise become the
/// password.
pub fn read_secret(prompt: &str) -> Result<String, String> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return read_line().map_err(|e| e.to_string());
    }
    let first = prompted(prompt).map_err(|e| e.to_string())?;
    let again = prompted("again, to be sure: ").map_err(|e| e.to_string())?;
    if first != again {
        return Err("the two passwords typed differ; nothing was changed".into());
    }
    Ok(first)
}

fn prompted(prompt: &str) -> io::Result<String> {
    // Echo goes off before the prompt shows: whatever is typed as soon as
    // it does must not appear.
    let line = {
        let _hidden = EchoOff::on_stdin()?;
        eprint!("{prompt}");
        io::stderr().flush()?;
        read_line()
    };
    // The Enter that ended the line was not echoed either.
    eprintln!();
    line
}

fn read_line() -> io::Result<String> {
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The terminal's echo, off until dropped (then as it was).
#[cfg(unix)]
struct EchoOff {
    saved: libc::termios,
}

#[cfg(unix)]
impl EchoOff {
    fn on_stdin() -> io::Result<Self> {
        // SAFETY: tcgetattr and tcsetattr only read and write the termios
        // struct given, for standard input, which is a terminal here.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut quiet = saved;
            quiet.c_lflag &= !(libc::ECHO | libc::ECHONL);
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self { saved })
        }
    }
}

#[cfg(unix)]
impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: as above; restores what was read from the same terminal.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

/// Elsewhere the secret is read as typed (with echo).
#[cfg(not(unix))]
struct EchoOff;

#[cfg(not(unix))]
impl EchoOff {
    fn on_stdin() -> io::Result<Self> {
        Ok(Self)
    }
}
