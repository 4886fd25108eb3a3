//! What can stop a command, and the exit code each maps to.

/// What can stop a command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input: configuration, a file, a trace, a snapshot or a scenario (exit code 2).
    Input(String),
    /// Writing the output failed (exit code 1).
    Output(String),
    /// A service could not be reached or refused us at start (exit code 1).
    Service(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(m) | Self::Output(m) | Self::Service(m) => f.write_str(m),
        }
    }
}

impl Failure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => 2,
            Self::Output(_) | Self::Service(_) => 1,
        }
    }
}
