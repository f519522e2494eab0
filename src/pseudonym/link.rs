//! When two key sets are the same person (spec §5.2): the rule every index applies.

use super::derive::Pseudonym;
use super::kind::{KeyKind, Strength};

/// Whether two subjects are linked as the same person.
///
/// They are when they share a person key that may match alone, or when they share
/// a key that may match only with another and, besides it, a key of a different
/// kind (person or household).
pub fn same_person(
    a_person: &[Pseudonym],
    a_household: &[Pseudonym],
    b_person: &[Pseudonym],
    b_household: &[Pseudonym],
) -> bool {
    let mut shared = [false; KeyKind::ALL.len()];
    let mut weak = false;
    for p in a_person {
        if b_person.contains(p) {
            match p.kind.strength() {
                Strength::Alone => return true,
                Strength::WithAnother => weak = true,
                Strength::Household => {}
            }
            shared[p.kind.index()] = true;
        }
    }
    if !weak {
        return false;
    }
    for h in a_household {
        if b_household.contains(h) {
            shared[h.kind.index()] = true;
        }
    }
    shared.iter().filter(|s| **s).count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: KeyKind, b: u8) -> Pseudonym {
        Pseudonym {
            kind,
            bytes: [b; 32],
        }
    }

    #[test]
    fn rule() {
        let bsn = p(KeyKind::Bsn, 1);
        let ini = p(KeyKind::InitialDate, 2);
        let gs = p(KeyKind::GivenStart, 3);
        let adr = p(KeyKind::Address, 4);
        assert!(same_person(&[bsn], &[], &[bsn, ini], &[]));
        assert!(!same_person(&[ini], &[], &[ini], &[]));
        assert!(same_person(&[ini, gs], &[], &[ini, gs], &[]));
        assert!(same_person(&[ini], &[adr], &[ini], &[adr]));
        assert!(!same_person(
            &[ini],
            &[adr],
            &[p(KeyKind::InitialDate, 9)],
            &[adr]
        ));
        assert!(!same_person(&[], &[adr], &[], &[adr]));
    }
}
