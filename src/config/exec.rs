//! `[exec]`: the environment no client may give an exec, and the variable names whose values
//! are secret in the record.
//!
//! Guarantees: every pattern is checked when the configuration loads (a bad one refuses the
//! configuration, naming it); the defaults refuse every variable known to make a shell or an
//! interpreter run code that is never typed (startup files, prompt hooks, preloads, option
//! variables) and redact the usual secret names.

use serde::{Deserialize, Serialize};

/// What a client may put in an exec's environment, and what of it the record hides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecConfig {
    /// Variables no client may set, whatever its token allows (matched case-sensitively, as
    /// programs read them). Replaces the default list when set.
    pub env_deny: Vec<EnvPattern>,
    /// Variables whose values are recorded as `[redacted]` (matched ignoring case).
    pub secret_env: Vec<EnvPattern>,
}

/// The variables refused by default, and why: each makes a shell, the dynamic loader or an
/// interpreter run code or change what a typed line does, without that code being typed.
pub const DEFAULT_ENV_DENY: &[&str] = &[
    // Shell startup files, hooks and prompts (bash, sh, zsh), option and parsing variables.
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "PROMPT_COMMAND",
    "PS0",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "SHELLOPTS",
    "BASHOPTS",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "INPUTRC",
    "ZDOTDIR",
    "HOME",
    "SHELL",
    "HISTFILE",
    "HISTCONTROL",
    "HISTIGNORE",
    // Which programs a name runs.
    "PATH",
    // The dynamic loader and the C library.
    "LD_*",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    // Interpreters' startup code and options.
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    // Set by Entry itself: the terminal type (from `term-type`) and the session marker.
    "TERM",
    "ENTRY_*",
];

/// Variable names whose values are secret by default (matched ignoring case).
pub const DEFAULT_SECRET_ENV: &[&str] =
    &["*PASSWORD*", "*PASSWD*", "*SECRET*", "*TOKEN*", "*KEY*", "*CREDENTIAL*", "*PRIVATE*"];

impl Default for ExecConfig {
    fn default() -> Self {
        let patterns = |list: &[&str]| list.iter().map(|p| EnvPattern(p.to_string())).collect();
        Self { env_deny: patterns(DEFAULT_ENV_DENY), secret_env: patterns(DEFAULT_SECRET_ENV) }
    }
}

/// A pattern over environment variable names: letters, digits and `_`, where `*` stands for
/// any run of characters (`LD_*`, `*PASSWORD*`, `PS1`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvPattern(String);

/// A pattern with other characters than letters, digits, `_` and `*`, or an empty one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad environment name pattern {0:?}: letters, digits, '_' and '*' only")]
pub struct EnvPatternError(pub String);

impl EnvPattern {
    /// Checks and wraps a pattern.
    pub fn new(pattern: &str) -> Result<Self, EnvPatternError> {
        let valid = !pattern.is_empty() && pattern.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'*');
        if valid { Ok(Self(pattern.to_owned())) } else { Err(EnvPatternError(pattern.to_owned())) }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches, exactly as written (environment names are case-sensitive).
    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes(), false)
    }

    /// Whether `name` matches, ignoring ASCII case.
    pub fn matches_ignoring_case(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes(), true)
    }
}

impl TryFrom<String> for EnvPattern {
    type Error = EnvPatternError;

    fn try_from(pattern: String) -> Result<Self, Self::Error> {
        Self::new(&pattern)
    }
}

impl From<EnvPattern> for String {
    fn from(pattern: EnvPattern) -> Self {
        pattern.0
    }
}

impl std::fmt::Debug for EnvPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for EnvPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*`-only glob matching in linear space: on a mismatch, the last `*` takes one more byte.
fn glob(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let same = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && same(pattern[p], text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> EnvPattern {
        EnvPattern::new(text).unwrap()
    }

    #[test]
    fn globs() {
        assert!(pattern("PS1").matches("PS1") && !pattern("PS1").matches("PS10") && !pattern("PS1").matches("ps1"));
        assert!(pattern("LD_*").matches("LD_PRELOAD") && pattern("LD_*").matches("LD_"));
        assert!(!pattern("LD_*").matches("OLD_PRELOAD") && !pattern("LD_*").matches("ld_preload"));
        assert!(pattern("*KEY*").matches("KEY") && pattern("*KEY*").matches("API_KEY_ID"));
        assert!(!pattern("*KEY*").matches("KE_Y") && !pattern("*KEY*").matches("api_key"));
        assert!(pattern("*KEY*").matches_ignoring_case("api_key") && pattern("*key*").matches_ignoring_case("KEY"));
        assert!(pattern("A*B*C").matches("AxxBxxBxC") && !pattern("A*B*C").matches("AxxBxxBxD"));
        assert!(pattern("*").matches("") && pattern("**").matches("ANY"));
        assert!(!pattern("A").matches("") && !pattern("AB").matches("A"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "LD-*", "A B", "A=B", "[A]", "A?"] {
            assert_eq!(EnvPattern::new(bad), Err(EnvPatternError(bad.into())), "{bad:?}");
        }
        assert!(crate::config::Config::from_toml_str("[exec]\nenv_deny = [\"LD-*\"]\n").is_err());
        let config = crate::config::Config::from_toml_str("[exec]\nenv_deny = [\"FOO\", \"X_*\"]\n").unwrap();
        assert_eq!(config.exec.env_deny, [pattern("FOO"), pattern("X_*")]);
        assert_eq!(config.exec.secret_env.len(), DEFAULT_SECRET_ENV.len());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
    fn the_lists_come_from_the_environment_too() {
        #[derive(Serialize)]
        struct NoFlags {}
        figment::Jail::expect_with(|jail| {
            jail.set_env("ENTRY_EXEC__ENV_DENY", r#"["FOO", "BAR_*"]"#);
            jail.set_env("ENTRY_EXEC__SECRET_ENV", r#"["*PIN*"]"#);
            let config = crate::config::Config::load(None, NoFlags {}).unwrap();
            assert_eq!(config.exec.env_deny, [pattern("FOO"), pattern("BAR_*")]);
            assert_eq!(config.exec.secret_env, [pattern("*PIN*")]);
            jail.set_env("ENTRY_EXEC__ENV_DENY", r#"["A B"]"#);
            assert!(crate::config::Config::load(None, NoFlags {}).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_defaults_are_valid_patterns() {
        for text in DEFAULT_ENV_DENY.iter().chain(DEFAULT_SECRET_ENV) {
            assert!(EnvPattern::new(text).is_ok(), "{text}");
        }
    }
}
