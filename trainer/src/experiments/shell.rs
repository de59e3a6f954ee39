//! The one way a value enters a generated shell script: [`quote`], a POSIX single-quoted
//! word. Inside single quotes the shell expands nothing (`$`, backquotes, `;`, newlines and
//! spaces are plain characters); a single quote itself is written `'\''` (close, an
//! escaped quote, reopen). The only character a shell word cannot hold is NUL, which is
//! refused.

/// A value that cannot be written as a shell word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} contains a NUL byte, which no shell word can hold")]
pub struct NulInValue {
    pub what: String,
}

/// `value` as one single-quoted shell word that the shell reads back as exactly `value`.
/// `what` names the value in the error.
pub fn quote(value: &str, what: &str) -> Result<String, NulInValue> {
    if value.contains('\0') {
        return Err(NulInValue { what: what.into() });
    }
    Ok(format!("'{}'", value.replace('\'', r"'\''")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// bash reads every quoted value back byte for byte and runs nothing it contains.
    #[test]
    fn bash_reads_every_quoted_value_back_exactly() {
        let dir = std::env::temp_dir().join(format!("mixsac-quote-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let m = marker.display();
        let mut values: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "with space".into(),
            "a;touch MARK".into(),
            "$(touch MARK)".into(),
            "`touch MARK`".into(),
            "'; touch MARK; echo '".into(),
            "\"; touch MARK; echo \"".into(),
            "line\ntouch MARK\n".into(),
            "\\'\\\"\\\\".into(),
            "${HOME}$PATH$1$@$*$$!*?[a]~".into(),
            "a'b''c'''".into(),
            "|& touch MARK &| > MARK < /dev/null #".into(),
            "ünïcødé ✓ \t\r\x07\x1b[31m".into(),
        ];
        values.push((1u8..=127).map(char::from).collect());
        for value in values {
            let value = value.replace("MARK", &m.to_string());
            let script = format!("printf '%s' {}", quote(&value, "test").unwrap());
            let out = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value, "{script}");
            assert!(!marker.exists(), "{script} ran a command");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_nul_byte_is_refused() {
        assert_eq!(
            quote("a\0b", "--mixsac"),
            Err(NulInValue {
                what: "--mixsac".into()
            })
        );
    }
}
