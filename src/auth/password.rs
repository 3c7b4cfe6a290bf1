//! The password policy (ASVS 5.0 V6.2): a minimum length (`[auth] password_min_chars`, at
//! least 8), a maximum of 1024 bytes (argon2 takes any length; a megabyte of it is an
//! attack), not the user's own name, and not one of the most common passwords. Checked when a
//! user is created and whenever a password is set; each refusal says which rule it broke (a
//! stable error code the console translates). No composition rules (digits, symbols): they
//! make passwords harder to remember, not to guess.

/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The most common passwords of at least 8 characters, from public breach corpora (the
/// lists of the worldwide top passwords and of the Chinese sites' leaks), lower-case.
/// Compared without regard to case; a short list on purpose: it stops the first guesses of
/// any attacker, and the throttle ([`super::throttle`]) slows the rest.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "123123123",
    "123321123",
    "123456123",
    "1234567899",
    "0123456789",
    "01234567",
    "87654321",
    "987654321",
    "9876543210",
    "11111111",
    "111111111",
    "1111111111",
    "00000000",
    "000000000",
    "0000000000",
    "88888888",
    "888888888",
    "66666666",
    "666666666",
    "99999999",
    "22222222",
    "55555555",
    "12341234",
    "11223344",
    "112233445566",
    "147258369",
    "123654789",
    "159357456",
    "741852963",
    "963852741",
    "1qaz2wsx",
    "1qaz2wsx3edc",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "qwertyui",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "qwe123456",
    "qweasdzxc",
    "asdfghjkl",
    "asdf1234",
    "zxcvbnm1",
    "zxcvbnm123",
    "abcd1234",
    "abc123456",
    "abc12345",
    "a1234567",
    "a12345678",
    "a123456789",
    "aa123456",
    "aa12345678",
    "aaaaaaaa",
    "abcdefgh",
    "abcdefg1",
    "iloveyou",
    "iloveyou1",
    "woaini1314",
    "woaini520",
    "woaini123",
    "5201314520",
    "52013145201314",
    "1314520520",
    "wang123456",
    "li123456",
    "zhang123456",
    "chen123456",
    "liu123456",
    "wangjian",
    "zhangwei",
    "admin123",
    "admin1234",
    "admin12345",
    "admin888",
    "administrator",
    "adminadmin",
    "root1234",
    "rootroot",
    "toor1234",
    "changeme",
    "changeme123",
    "welcome1",
    "welcome123",
    "letmein1",
    "letmein123",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "superman",
    "starwars",
    "whatever",
    "trustno1",
    "dragon123",
    "master123",
    "monkey123",
    "shadow123",
    "michael1",
    "jennifer",
    "computer",
    "internet",
    "1234qwer",
    "qwer1234",
    "test1234",
    "testtest",
    "guest123",
    "user1234",
    "default1",
    "secret123",
    "cistern1",
    "cistern123",
    "scada123",
    "water123",
];

/// Why a password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {min} characters and at most {MAX_PASSWORD_BYTES} bytes")]
    Length { min: usize },
    #[error("a password must not be the user's name")]
    IsName,
    #[error("this password is one of the most common ones: choose another")]
    Common,
}

/// Checks `password` for the user `name` against the policy, `min` characters at least.
pub fn check(name: &str, password: &str, min: usize) -> Result<(), PasswordError> {
    if password.chars().count() < min || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length { min });
    }
    let folded = password.trim().to_lowercase();
    if folded == name.trim().to_lowercase() {
        return Err(PasswordError::IsName);
    }
    if COMMON.contains(&folded.as_str()) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_each_rule_with_its_own_reason() {
        assert_eq!(
            check("op1", "short", 8),
            Err(PasswordError::Length { min: 8 })
        );
        assert_eq!(
            check("op1", "eleven-char", 12),
            Err(PasswordError::Length { min: 12 })
        );
        assert_eq!(
            check("op1", &"x".repeat(2000), 8),
            Err(PasswordError::Length { min: 8 })
        );
        // Counted in characters: eight Chinese characters are eight.
        assert_eq!(check("op1", "水泵房值班密码口令", 8), Ok(()));
        assert_eq!(
            check("operator-01", "Operator-01", 8),
            Err(PasswordError::IsName)
        );
        assert_eq!(check("x", "Password123", 8), Err(PasswordError::Common));
        assert_eq!(check("x", "WOAINI1314", 8), Err(PasswordError::Common));
        assert_eq!(check("op1", "op1-password", 12), Ok(()));
    }

    #[test]
    fn the_list_is_lower_case_long_enough_to_matter_and_without_repeats() {
        let mut seen = std::collections::HashSet::new();
        for p in COMMON {
            assert_eq!(*p, p.to_lowercase(), "{p}");
            assert!(p.chars().count() >= 8, "{p} is refused by length anyway");
            assert!(seen.insert(*p), "{p} twice");
        }
    }
}
