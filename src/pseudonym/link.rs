//! When two key sets are the same person (spec §5.2): the rule every index applies.
//!
//! [`Shared`] is the rule over a summary of what two key sets share; [`same_person`]
//! applies it to two key sets, and the index's engine builds the same summary from
//! its posting lists, so both decide alike.

use super::derive::Pseudonym;
use super::kind::{KeyKind, Strength};

/// What two key sets share, as far as the link rule needs it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// A person key of strength [`Strength::Alone`] is shared.
    alone: bool,
    /// Bit `k` set: a person key of kind index `k` and strength
    /// [`Strength::WithAnother`] is shared.
    with_another: u32,
    /// A person key of strength [`Strength::WithHousehold`] is shared.
    with_household: bool,
    /// A household key is shared.
    household: bool,
    /// Both key sets carry a BSN key and they share none (the BSN veto).
    bsn_differs: bool,
}

impl Shared {
    /// Records a shared person key of `kind`.
    pub fn add_person(&mut self, kind: KeyKind) {
        match kind.strength() {
            Strength::Alone => self.alone = true,
            Strength::WithAnother => self.with_another |= 1 << kind.index(),
            Strength::WithHousehold => self.with_household = true,
            Strength::Household => self.household = true,
        }
    }

    /// Records a shared household key.
    pub fn add_household(&mut self) {
        self.household = true;
    }

    /// Records that both key sets carry a BSN and no BSN key is shared.
    pub fn set_bsn_differs(&mut self) {
        self.bsn_differs = true;
    }

    /// Whether a person key of strength [`Strength::Alone`] is shared.
    pub fn has_alone(&self) -> bool {
        self.alone
    }

    /// The link rule of spec §5.2.
    pub fn links(&self) -> bool {
        if self.bsn_differs {
            return false;
        }
        if self.alone {
            return true;
        }
        if self.with_household && self.household {
            return true;
        }
        self.with_another != 0 && self.with_another.count_ones() + u32::from(self.household) >= 2
    }
}

/// Whether both key sets carry a BSN key and share none of them.
pub fn bsn_differs<'a, I, J>(a: I, b: J) -> bool
where
    I: IntoIterator<Item = &'a Pseudonym>,
    J: IntoIterator<Item = &'a Pseudonym> + Clone,
{
    let mut a_has = false;
    for p in a.into_iter().filter(|p| p.kind == KeyKind::Bsn) {
        a_has = true;
        if b.clone().into_iter().any(|q| q == p) {
            return false;
        }
    }
    a_has && b.into_iter().any(|q| q.kind == KeyKind::Bsn)
}

/// What two subjects' key sets share.
pub fn shared(
    a_person: &[Pseudonym],
    a_household: &[Pseudonym],
    b_person: &[Pseudonym],
    b_household: &[Pseudonym],
) -> Shared {
    let mut s = Shared::default();
    for p in a_person {
        if b_person.contains(p) {
            s.add_person(p.kind);
        }
    }
    if a_household.iter().any(|h| b_household.contains(h)) {
        s.add_household();
    }
    if bsn_differs(a_person, b_person) {
        s.set_bsn_differs();
    }
    s
}

/// Whether two subjects are linked as the same person (spec §5.2).
///
/// Never when both carry a BSN and the BSNs differ. Otherwise they are when they
/// share a person key that may match alone; or a key that may match only with
/// another and, besides it, a key of a different kind (a person key of that strength,
/// or a household key); or a key that may match only with a household key (`id`,
/// `py`, `pm`) and a household key.
pub fn same_person(
    a_person: &[Pseudonym],
    a_household: &[Pseudonym],
    b_person: &[Pseudonym],
    b_household: &[Pseudonym],
) -> bool {
    shared(a_person, a_household, b_person, b_household).links()
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

    #[test]
    fn family_affix_keys_are_weak() {
        let fs = p(KeyKind::FamilyStart, 1);
        let fe = p(KeyKind::FamilyEnd, 2);
        let adr = p(KeyKind::Address, 3);
        assert!(!same_person(&[fs], &[], &[fs], &[]));
        assert!(!same_person(&[fe], &[], &[fe], &[]));
        assert!(same_person(&[fs, fe], &[], &[fs, fe], &[]));
        assert!(same_person(&[fs], &[adr], &[fs], &[adr]));
    }

    #[test]
    fn household_only_keys_count_only_with_a_household_key() {
        let id = p(KeyKind::InitialBirthDate, 1);
        let ini = p(KeyKind::InitialDate, 2);
        let adr = p(KeyKind::Address, 3);
        assert!(!same_person(&[id], &[], &[id], &[]));
        assert!(same_person(&[id], &[adr], &[id], &[adr]));
        // `in` implies `id`: together they are still one weak piece of evidence.
        assert!(!same_person(&[id, ini], &[], &[id, ini], &[]));
        assert!(same_person(&[id, ini], &[adr], &[id, ini], &[adr]));
        // The date-tolerant name keys behave alike.
        for kind in [KeyKind::PhoneticYear, KeyKind::PhoneticMonthDay] {
            let k = p(kind, 6);
            assert!(!same_person(&[k], &[], &[k], &[]));
            assert!(!same_person(&[k, ini], &[], &[k, ini], &[]));
            assert!(same_person(&[k], &[adr], &[k], &[adr]));
        }
    }

    #[test]
    fn different_bsns_never_link() {
        let (b1, b2) = (p(KeyKind::Bsn, 1), p(KeyKind::Bsn, 2));
        let nd = p(KeyKind::NameDate, 3);
        let ini = p(KeyKind::InitialDate, 4);
        let adr = p(KeyKind::Address, 5);
        // Twins at one address with the same initial: vetoed by their BSNs.
        assert!(!same_person(&[b1, ini], &[adr], &[b2, ini], &[adr]));
        // Whatever else they share.
        assert!(!same_person(&[b1, nd], &[adr], &[b2, nd], &[adr]));
        // One BSN only: no veto.
        assert!(same_person(&[b1, nd], &[], &[nd], &[]));
        assert!(same_person(&[nd], &[], &[b2, nd], &[]));
        // The same BSN.
        assert!(same_person(&[b1, nd], &[], &[b1], &[]));
        assert!(bsn_differs(&[b1], &[b2, nd]));
        assert!(!bsn_differs(&[b1], &[nd]));
        assert!(!bsn_differs(&[nd], &[b2]));
        assert!(!bsn_differs(&[b1, b2], &[b2]));
    }
}
