//! The `civis` binary: parses the command line and hands over to [`civis::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    civis::cli::main()
}
