//! Fault injection for the emulator (`--fault SPEC`, repeatable).

use std::str::FromStr;

/// All injected faults of one emulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop the first N invitations (as if lost on the network).
    pub drop_invitations: u32,
    /// Lose the first AUTH challenge (the device still waits for the response).
    pub drop_auth_reply: bool,
    /// Lose the first UDP "OK"; the device goes on and connects back.
    pub drop_ok: bool,
    /// Send every UDP reply twice.
    pub dup_replies: bool,
    /// Drop this percentage of UDP datagrams, both directions, at random.
    pub udp_loss_pct: u8,
    /// Accept the update but never connect back (the firewall case).
    pub no_connect_back: bool,
    /// The link stops delivering after this many bytes.
    pub stall_after: Option<u64>,
    /// Close the connection (FIN, no text) after this many bytes.
    pub close_after: Option<u64>,
    /// Reset the connection (RST) after this many bytes.
    pub reset_after: Option<u64>,
    /// Flip one received byte (MD5 failure).
    pub corrupt: bool,
    /// Answer this error text instead of "OK" at the end.
    pub error_at_end: Option<String>,
    /// ESP8266: send "OK" at once, glued to the last count.
    pub glue_ok: bool,
    /// Ignore every invitation (an update is running, or the loop is blocked).
    pub busy: bool,
    /// After a successful update, never answer again (new firmware without OTA).
    pub never_back: bool,
    /// ESP8266 before core 2.7.0: a gzip image fails the magic check at the end.
    pub no_gzip: bool,
    /// After a successful update, come back running the previous image (a
    /// bootloader's rollback after the new one failed to start).
    pub rollback: bool,
}

/// The spellings `--fault` takes, for help and errors.
pub const FAULT_SPELLINGS: &str = "drop-invitations=N, drop-auth-reply, drop-ok, dup-replies, \
udp-loss=PCT, no-connect-back, stall-after=BYTES, close-after=BYTES, reset-after=BYTES, \
corrupt, error-at-end=TEXT, glue-ok, busy, never-back, no-gzip, rollback";

/// One `--fault` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpec(String);

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut probe = Faults::default();
        probe.apply(s)?;
        Ok(FaultSpec(s.to_string()))
    }
}

impl Faults {
    /// Combine `--fault` specs; a bad combination is an error naming it.
    pub fn from_specs(specs: &[FaultSpec]) -> Result<Faults, String> {
        let mut f = Faults::default();
        for s in specs {
            f.apply(&s.0)?;
        }
        Ok(f)
    }

    /// Add one fault from its spelling.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (spec.trim(), None),
        };
        let number = |what: &str| -> Result<u64, String> {
            let v = value.ok_or_else(|| format!("fault `{name}` needs a value: {name}={what}"))?;
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("fault `{name}`: `{v}` is not a whole number ({what})"))
        };
        let flag = |f: &mut bool| -> Result<(), String> {
            if value.is_some() {
                return Err(format!("fault `{name}` takes no value"));
            }
            *f = true;
            Ok(())
        };
        match name {
            "drop-invitations" => {
                self.drop_invitations = u32::try_from(number("N")?)
                    .map_err(|_| "fault `drop-invitations`: value too large".to_string())?
            }
            "udp-loss" => {
                let pct = number("PCT")?;
                if pct > 100 {
                    return Err(format!(
                        "fault `udp-loss`: {pct} is not a percentage (0-100)"
                    ));
                }
                self.udp_loss_pct = pct as u8;
            }
            "stall-after" => self.stall_after = Some(number("BYTES")?),
            "close-after" => self.close_after = Some(number("BYTES")?),
            "reset-after" => self.reset_after = Some(number("BYTES")?),
            "error-at-end" => match value {
                Some(t) if !t.is_empty() => self.error_at_end = Some(t.to_string()),
                _ => return Err("fault `error-at-end` needs a text: error-at-end=TEXT".into()),
            },
            "drop-auth-reply" => flag(&mut self.drop_auth_reply)?,
            "drop-ok" => flag(&mut self.drop_ok)?,
            "dup-replies" => flag(&mut self.dup_replies)?,
            "no-connect-back" => flag(&mut self.no_connect_back)?,
            "corrupt" => flag(&mut self.corrupt)?,
            "glue-ok" => flag(&mut self.glue_ok)?,
            "no-gzip" => flag(&mut self.no_gzip)?,
            "busy" => flag(&mut self.busy)?,
            "never-back" => flag(&mut self.never_back)?,
            "rollback" => flag(&mut self.rollback)?,
            other => {
                return Err(format!(
                    "unknown fault `{other}`; the faults are: {FAULT_SPELLINGS}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_spelling() {
        let specs: Vec<FaultSpec> = [
            "drop-invitations=2",
            "drop-auth-reply",
            "drop-ok",
            "dup-replies",
            "udp-loss=50",
            "no-connect-back",
            "stall-after=100",
            "close-after=200",
            "reset-after=300",
            "corrupt",
            "error-at-end=Flash Write Failed",
            "glue-ok",
            "busy",
            "never-back",
            "no-gzip",
            "rollback",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let f = Faults::from_specs(&specs).unwrap();
        assert_eq!(f.drop_invitations, 2);
        assert_eq!(f.udp_loss_pct, 50);
        assert_eq!(f.stall_after, Some(100));
        assert_eq!(f.close_after, Some(200));
        assert_eq!(f.reset_after, Some(300));
        assert_eq!(f.error_at_end.as_deref(), Some("Flash Write Failed"));
        assert!(f.drop_auth_reply && f.drop_ok && f.dup_replies && f.no_connect_back);
        assert!(f.corrupt && f.glue_ok && f.busy && f.never_back && f.no_gzip && f.rollback);
    }

    #[test]
    fn rejects_bad_spellings() {
        for bad in [
            "nope",
            "udp-loss=101",
            "stall-after",
            "stall-after=x",
            "busy=1",
            "error-at-end=",
        ] {
            let err = bad.parse::<FaultSpec>().unwrap_err();
            assert!(err.contains("fault"), "{bad}: {err}");
        }
        assert!("nope".parse::<FaultSpec>().unwrap_err().contains("drop-ok"));
    }
}
