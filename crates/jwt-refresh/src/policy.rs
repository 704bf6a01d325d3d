//! Lifetimes and the reuse grace window.

use std::time::Duration;

use jwt_core::time::secs;

use crate::error::{Error, Result};

/// Upper bound for [`RefreshPolicyBuilder::reuse_grace`]: a longer window would let a thief
/// who races the client keep a session alive unnoticed.
pub const MAX_REUSE_GRACE: Duration = Duration::from_secs(60);

/// How long refresh tokens and families live, and whether a just-rotated token may be
/// re-presented.
///
/// ```
/// use jwt_refresh::RefreshPolicy;
/// use std::time::Duration;
///
/// let policy = RefreshPolicy::builder()
///     .ttl(Duration::from_secs(7 * 24 * 3600))
///     .max_family_lifetime(Duration::from_secs(30 * 24 * 3600))
///     .reuse_grace(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(policy.reuse_grace(), Some(Duration::from_secs(10)));
///
/// // Contradictions and unsafe values are refused.
/// assert!(RefreshPolicy::builder().reuse_grace(Duration::from_secs(600)).build().is_err());
/// # Ok::<(), jwt_refresh::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    ttl: Duration,
    max_family_lifetime: Duration,
    reuse_grace: Option<Duration>,
}

impl Default for RefreshPolicy {
    /// 14 days per token, 30 days per login, no reuse grace.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(14 * 24 * 3600),
            max_family_lifetime: Duration::from_secs(30 * 24 * 3600),
            reuse_grace: None,
        }
    }
}

impl RefreshPolicy {
    /// Upper bound of [`RefreshPolicyBuilder::ttl`]: 365 days. A refresh token is a
    /// bearer credential; a year without use is an abandoned session. The bound also
    /// keeps `now + ttl` far from overflowing a Unix time.
    pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

    /// Upper bound of [`RefreshPolicyBuilder::max_family_lifetime`]: 365 days. Users
    /// log in again at least once a year.
    pub const MAX_FAMILY_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

    /// A builder starting from [`RefreshPolicy::default`].
    pub fn builder() -> RefreshPolicyBuilder {
        RefreshPolicyBuilder {
            policy: RefreshPolicy::default(),
        }
    }

    /// Lifetime of each refresh token unless the issue request says otherwise (an idle session
    /// ends after this long without a refresh).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Absolute lifetime of a family (login): no successor outlives `login time + this`.
    pub fn max_family_lifetime(&self) -> Duration {
        self.max_family_lifetime
    }

    /// The reuse grace window, if enabled.
    pub fn reuse_grace(&self) -> Option<Duration> {
        self.reuse_grace
    }

    pub(crate) fn ttl_secs(&self) -> i64 {
        secs(self.ttl)
    }

    pub(crate) fn family_lifetime_secs(&self) -> i64 {
        secs(self.max_family_lifetime)
    }

    /// 0 when disabled.
    pub(crate) fn grace_secs(&self) -> i64 {
        self.reuse_grace.map_or(0, secs)
    }
}

/// Builds a [`RefreshPolicy`]; [`build`](Self::build) refuses unsafe or contradictory values.
#[derive(Debug, Clone)]
pub struct RefreshPolicyBuilder {
    policy: RefreshPolicy,
}

impl RefreshPolicyBuilder {
    /// Default lifetime of a refresh token (whole seconds, 1 s to
    /// [`RefreshPolicy::MAX_TTL`]).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.policy.ttl = ttl;
        self
    }

    /// Absolute lifetime of a family (whole seconds, at least the `ttl`, at most
    /// [`RefreshPolicy::MAX_FAMILY_LIFETIME`]).
    pub fn max_family_lifetime(mut self, lifetime: Duration) -> Self {
        self.policy.max_family_lifetime = lifetime;
        self
    }

    /// Enables the reuse grace window: within `grace` after a rotation, re-presenting the
    /// immediately previous token returns the same successor instead of revoking the family.
    /// Whole seconds, 1 s to [`MAX_REUSE_GRACE`].
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.policy.reuse_grace = Some(grace);
        self
    }

    /// Disables the reuse grace window (the default).
    pub fn no_reuse_grace(mut self) -> Self {
        self.policy.reuse_grace = None;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<RefreshPolicy> {
        let p = self.policy;
        let whole = |d: Duration| d.subsec_nanos() == 0;
        if p.ttl.as_secs() == 0 || !whole(p.ttl) {
            return Err(Error::invalid_config(
                "ttl",
                format!("{:?} is not a whole number of seconds ≥ 1 s", p.ttl),
            ));
        }
        if p.ttl > RefreshPolicy::MAX_TTL {
            return Err(Error::invalid_config(
                "ttl",
                format!(
                    "{}s is over the maximum of {}s (365 days); refresh tokens that live longer are \
                     abandoned credentials — shorten the ttl",
                    p.ttl.as_secs(),
                    RefreshPolicy::MAX_TTL.as_secs()
                ),
            ));
        }
        if p.max_family_lifetime > RefreshPolicy::MAX_FAMILY_LIFETIME {
            return Err(Error::invalid_config(
                "max_family_lifetime",
                format!(
                    "{}s is over the maximum of {}s (365 days); make users log in again at least once \
                     a year",
                    p.max_family_lifetime.as_secs(),
                    RefreshPolicy::MAX_FAMILY_LIFETIME.as_secs()
                ),
            ));
        }
        if !whole(p.max_family_lifetime) || p.max_family_lifetime < p.ttl {
            return Err(Error::invalid_config(
                "max_family_lifetime",
                format!(
                    "{:?} must be whole seconds and at least the token ttl ({:?})",
                    p.max_family_lifetime, p.ttl
                ),
            ));
        }
        if let Some(g) = p.reuse_grace {
            if g.as_secs() == 0 || !whole(g) || g > MAX_REUSE_GRACE {
                return Err(Error::invalid_config(
                    "reuse_grace",
                    format!(
                        "{g:?} must be whole seconds between 1 s and {MAX_REUSE_GRACE:?}; longer windows hide token theft (use no_reuse_grace() to disable)"
                    ),
                ));
            }
            if g >= p.ttl {
                return Err(Error::invalid_config(
                    "reuse_grace",
                    format!("{g:?} must be shorter than the token ttl ({:?})", p.ttl),
                ));
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unsafe_and_contradictory_settings() {
        let s = Duration::from_secs;
        let err = |b: RefreshPolicyBuilder| match b.build() {
            Err(Error::InvalidConfig { setting, .. }) => setting,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(
            err(RefreshPolicy::builder().reuse_grace(s(61))),
            "reuse_grace"
        );
        assert_eq!(
            err(RefreshPolicy::builder().reuse_grace(s(0))),
            "reuse_grace"
        );
        assert_eq!(
            err(RefreshPolicy::builder().reuse_grace(Duration::from_millis(1500))),
            "reuse_grace"
        );
        assert_eq!(err(RefreshPolicy::builder().ttl(s(0))), "ttl");
        assert_eq!(
            err(RefreshPolicy::builder().ttl(s(10)).reuse_grace(s(10))),
            "reuse_grace"
        );
        assert_eq!(
            err(RefreshPolicy::builder()
                .ttl(s(100))
                .max_family_lifetime(s(99))),
            "max_family_lifetime"
        );
        let ok = RefreshPolicy::builder().reuse_grace(s(60)).build().unwrap();
        assert_eq!(ok.grace_secs(), 60);
    }

    /// Issue 11 item 5: a ttl near `i64::MAX` seconds used to be accepted and
    /// made every later issue fail (or emit an `exp` past `i64::MAX`).
    #[test]
    fn lifetimes_over_their_maximum_are_refused_naming_setting_limit_and_value() {
        let s = Duration::from_secs;
        let year = 365 * 86_400;
        let refused = |b: RefreshPolicyBuilder| match b.build() {
            Err(Error::InvalidConfig { setting, reason }) => (setting, reason),
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let huge = s(106_751_991_167_300 * 86_400);
        let (setting, reason) =
            refused(RefreshPolicy::builder().ttl(huge).max_family_lifetime(huge));
        assert_eq!(setting, "ttl");
        assert!(
            reason.contains(&format!("{}s", huge.as_secs())) && reason.contains("31536000s"),
            "{reason}"
        );
        let (setting, reason) = refused(
            RefreshPolicy::builder()
                .ttl(s(year))
                .max_family_lifetime(s(year + 1)),
        );
        assert_eq!(setting, "max_family_lifetime");
        assert!(
            reason.contains("31536001s") && reason.contains("31536000s"),
            "{reason}"
        );
        let ok = RefreshPolicy::builder()
            .ttl(RefreshPolicy::MAX_TTL)
            .max_family_lifetime(RefreshPolicy::MAX_FAMILY_LIFETIME)
            .build()
            .unwrap();
        assert_eq!(ok.ttl_secs(), year as i64);
    }
}
