//! The synthetic population: households at addresses, families, couples and singles,
//! with names, birth dates and official numbers.

use super::names::{FamilyName, NameTables, Origin, Sex, call_names, polish_feminine};
use super::rng::{Rng, Weighted};
use crate::pseudonym::Date;
use crate::pseudonym::number::passes_11_proef;
use std::collections::HashSet;

/// Share of births that are twin births (CBS: about 1.7% of deliveries).
pub const TWIN_BIRTHS: f64 = 0.017;
/// Share of twin pairs whose given names start with the same letter (Lars and Luuk).
pub const TWINS_SAME_INITIAL: f64 = 0.15;
/// Youngest and oldest age of a parent at a child's birth.
pub const PARENT_AGE_YEARS: (i64, i64) = (18, 45);

/// A Dutch address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Postcode `1234AB`.
    pub postcode: String,
    /// House number.
    pub number: u32,
    /// Addition (huisletter/toevoeging) as registered, e.g. "A", "2", "bis", "hs"; may be empty.
    pub addition: String,
}

/// A household at one address.
#[derive(Debug, Clone)]
pub struct Household {
    /// Dense id.
    pub id: u32,
    /// Current address.
    pub address: Address,
    /// The address before the last move (shown by records that are out of date).
    pub previous: Address,
    /// Members (person ids).
    pub members: Vec<u32>,
    /// Origin of the household's names.
    pub origin: Origin,
    /// How much more likely than average its members are known to care partners
    /// (households with problems meet many organisations).
    pub involvement: f64,
}

/// How a woman with a partner uses her family name (naamgebruik).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameUsage {
    /// Her own (birth) name.
    Own,
    /// Partner's name, then her own: "de Vries-Jansen" for Jansen married to de Vries.
    PartnerOwn,
    /// Partner's name only.
    PartnerOnly,
    /// Her own name, then her partner's: "Jansen-de Vries".
    OwnPartner,
}

/// One person.
#[derive(Debug, Clone)]
pub struct Person {
    /// Dense id (the truth: never in an export column).
    pub id: u32,
    /// Household id.
    pub household: u32,
    /// Sex.
    pub sex: Sex,
    /// Origin of the names.
    pub origin: Origin,
    /// Official given names (voornamen), at least one.
    pub given_names: Vec<&'static str>,
    /// The call name used instead of the first given name, when there is a common one.
    pub call_name: Option<&'static str>,
    /// Birth name (geslachtsnaam).
    pub family: FamilyName,
    /// Name usage.
    pub usage: NameUsage,
    /// The partner's family name, when the usage involves it.
    pub partner_family: Option<FamilyName>,
    /// Partner (spouse or cohabitant) in the same household.
    pub spouse: Option<u32>,
    /// Parents in the same household (zero, one or two).
    pub parents: Vec<u32>,
    /// Twin sibling.
    pub twin: Option<u32>,
    /// Birth date.
    pub birth_date: Date,
    /// BSN, nine digits, valid.
    pub bsn: Option<String>,
    /// V-nummer, ten digits, for people without a BSN.
    pub v_number: Option<String>,
}

impl Person {
    /// The family-name parts as used (usage name), first part first.
    pub fn usage_parts(&self) -> Vec<FamilyName> {
        match (self.usage, &self.partner_family) {
            (NameUsage::PartnerOwn, Some(p)) => vec![p.clone(), self.family.clone()],
            (NameUsage::OwnPartner, Some(p)) => vec![self.family.clone(), p.clone()],
            (NameUsage::PartnerOnly, Some(p)) => vec![p.clone()],
            _ => vec![self.family.clone()],
        }
    }

    /// Age in whole years on `today`.
    pub fn age(&self, today: Date) -> i64 {
        let mut age = i64::from(today.year) - i64::from(self.birth_date.year);
        if (today.month, today.day) < (self.birth_date.month, self.birth_date.day) {
            age -= 1;
        }
        age
    }
}

/// How two persons are related (for classifying false links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// The same person.
    Same,
    /// Twins.
    Twins,
    /// Siblings (not twins).
    Siblings,
    /// Parent and child.
    ParentChild,
    /// Partners.
    Partners,
    /// Other members of one household.
    SameHousehold,
    /// Unrelated.
    Unrelated,
}

impl Relation {
    /// Label for reports.
    pub fn name(self) -> &'static str {
        match self {
            Relation::Same => "same",
            Relation::Twins => "twins",
            Relation::Siblings => "siblings",
            Relation::ParentChild => "parent_child",
            Relation::Partners => "partners",
            Relation::SameHousehold => "same_household",
            Relation::Unrelated => "unrelated",
        }
    }
}

/// The family facts of one person needed to classify a pair (also read from truth.csv).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kin {
    /// Household id.
    pub household: u32,
    /// Parents.
    pub parents: Vec<u32>,
    /// Partner.
    pub spouse: Option<u32>,
    /// Twin.
    pub twin: Option<u32>,
}

/// Classifies two persons given a lookup of their family facts.
pub fn relation<'a>(a: u32, b: u32, kin: impl Fn(u32) -> Option<&'a Kin>) -> Relation {
    if a == b {
        return Relation::Same;
    }
    let (Some(ka), Some(kb)) = (kin(a), kin(b)) else {
        return Relation::Unrelated;
    };
    if ka.twin == Some(b) || kb.twin == Some(a) {
        Relation::Twins
    } else if ka.parents.contains(&b) || kb.parents.contains(&a) {
        Relation::ParentChild
    } else if ka.parents.iter().any(|p| kb.parents.contains(p)) {
        Relation::Siblings
    } else if ka.spouse == Some(b) || kb.spouse == Some(a) {
        Relation::Partners
    } else if ka.household == kb.household {
        Relation::SameHousehold
    } else {
        Relation::Unrelated
    }
}

/// The whole synthetic population.
#[derive(Debug, Clone)]
pub struct Population {
    /// Persons, indexed by id.
    pub persons: Vec<Person>,
    /// Households, indexed by id.
    pub households: Vec<Household>,
    /// The reference date: every birth is on or before it.
    pub today: Date,
}

impl Population {
    /// The family facts of every person, indexed by id.
    pub fn kin(&self) -> Vec<Kin> {
        self.persons
            .iter()
            .map(|p| Kin {
                household: p.household,
                parents: p.parents.clone(),
                spouse: p.spouse,
                twin: p.twin,
            })
            .collect()
    }

    /// How two persons are related.
    pub fn relation(&self, a: u32, b: u32) -> Relation {
        let kin = |id: u32| -> Option<Kin> {
            self.persons.get(id as usize).map(|p| Kin {
                household: p.household,
                parents: p.parents.clone(),
                spouse: p.spouse,
                twin: p.twin,
            })
        };
        let (ka, kb) = (kin(a), kin(b));
        relation(a, b, |id| {
            if id == a {
                ka.as_ref()
            } else if id == b {
                kb.as_ref()
            } else {
                None
            }
        })
    }
}

/// Household types with their share of households (CBS, rounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HouseholdType {
    Single,
    Couple,
    CoupleWithChildren,
    SingleParent,
}

const HOUSEHOLD_SHARES: [(HouseholdType, f64); 4] = [
    (HouseholdType::Single, 0.39),
    (HouseholdType::Couple, 0.28),
    (HouseholdType::CoupleWithChildren, 0.25),
    (HouseholdType::SingleParent, 0.08),
];

/// Number of children in a family: 1, 2, 3, 4, 5.
const CHILDREN_SHARES: [f64; 5] = [0.38, 0.42, 0.14, 0.04, 0.02];

/// Share of persons without a BSN outside recently arrived households.
const NO_BSN_INDIVIDUAL: f64 = 0.005;
/// Share of households of recent-migration origins that arrived recently (no BSN yet).
const NEWCOMER_HOUSEHOLDS: f64 = 0.25;
/// Of the persons without a BSN, the share with a V-nummer.
const V_NUMBER_SHARE: f64 = 0.75;
/// Share of households whose members are much more involved with care partners.
const HIGH_INVOLVEMENT: f64 = 0.30;
/// Involvement factors for high and other households (mean 1).
const INVOLVEMENT: (f64, f64) = (
    1.8,
    (1.0 - HIGH_INVOLVEMENT * 1.8) / (1.0 - HIGH_INVOLVEMENT),
);

const YEAR_DAYS: f64 = 365.2425;

struct Builder<'a> {
    rng: Rng,
    names: &'a NameTables,
    today_days: i64,
    persons: Vec<Person>,
    households: Vec<Household>,
    addresses: HashSet<Address>,
    bsns: HashSet<String>,
    v_numbers: HashSet<String>,
    household_types: Weighted,
    origins: Weighted,
    children: Weighted,
}

/// Generates a population of at least `persons` people (whole households; the
/// last household may overshoot by a few).
pub fn generate(seed: u64, persons: usize, today: Date) -> Population {
    let names = NameTables::new();
    let mut b = Builder {
        rng: Rng::new(seed, 0x506f_7075),
        names: &names,
        today_days: today.days_since_epoch(),
        persons: Vec::with_capacity(persons + 8),
        households: Vec::with_capacity(persons / 2 + 1),
        addresses: HashSet::with_capacity(persons),
        bsns: HashSet::with_capacity(persons),
        v_numbers: HashSet::new(),
        household_types: Weighted::new(HOUSEHOLD_SHARES.map(|(_, s)| s)),
        origins: Weighted::new(Origin::SHARES.map(|(_, s)| s)),
        children: Weighted::new(CHILDREN_SHARES),
    };
    while b.persons.len() < persons {
        b.household();
    }
    Population {
        persons: b.persons,
        households: b.households,
        today,
    }
}

impl Builder<'_> {
    fn household(&mut self) {
        let id = self.households.len() as u32;
        let origin = Origin::SHARES[self.origins.sample(&mut self.rng)].0;
        let newcomers = origin.recent_migration() && self.rng.chance(NEWCOMER_HOUSEHOLDS);
        let address = self.new_address();
        let previous = self.random_address();
        let involvement = if self.rng.chance(HIGH_INVOLVEMENT) {
            INVOLVEMENT.0
        } else {
            INVOLVEMENT.1
        };
        self.households.push(Household {
            id,
            address,
            previous,
            members: Vec::new(),
            origin,
            involvement,
        });
        let kind = HOUSEHOLD_SHARES[self.household_types.sample(&mut self.rng)].0;
        let family = self.names.family(&mut self.rng, origin);
        match kind {
            HouseholdType::Single => {
                let age = self.single_age();
                let sex = self.sex();
                let birth = self.birth_from_age_years(age);
                self.person(id, origin, sex, family, birth, newcomers, 0.0);
            }
            HouseholdType::Couple => {
                let age = if self.rng.chance(0.4) {
                    self.rng.range(20, 40) as f64
                } else {
                    self.rng.range(45, 90) as f64
                } + self.rng.unit();
                self.couple(
                    id,
                    origin,
                    family,
                    self.birth_from_age_years(age),
                    newcomers,
                );
            }
            HouseholdType::CoupleWithChildren | HouseholdType::SingleParent => {
                self.family(
                    id,
                    origin,
                    family,
                    newcomers,
                    kind == HouseholdType::SingleParent,
                );
            }
        }
    }

    fn sex(&mut self) -> Sex {
        if self.rng.chance(0.5) {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    fn single_age(&mut self) -> f64 {
        let r = self.rng.unit();
        let (lo, hi) = if r < 0.35 {
            (18, 35)
        } else if r < 0.70 {
            (35, 70)
        } else {
            (70, 96)
        };
        self.rng.range(lo, hi - 1) as f64 + self.rng.unit()
    }

    fn birth_from_age_years(&self, age: f64) -> Date {
        let days = (age * YEAR_DAYS) as i64;
        Date::from_days_since_epoch(self.today_days - days.max(0))
    }

    /// A couple without children at home; the first person is born on `birth`.
    fn couple(&mut self, hh: u32, origin: Origin, family: FamilyName, birth: Date, new: bool) {
        let same_sex = self.rng.chance(0.02);
        let first_sex = self.sex();
        let second_sex = match (same_sex, first_sex) {
            (true, s) => s,
            (false, Sex::Male) => Sex::Female,
            (false, Sex::Female) => Sex::Male,
        };
        let gap = self.rng.normal(2.5, 3.5) * YEAR_DAYS;
        let gap = if first_sex == Sex::Male { gap } else { -gap };
        let partner_birth = self.clamp_adult(birth.days_since_epoch() + gap as i64);
        let partner_origin = self.partner_origin(origin);
        let partner_family = self.names.family(&mut self.rng, partner_origin);
        let a = self.person(hh, origin, first_sex, family, birth, new, 0.0);
        let b = self.person(
            hh,
            partner_origin,
            second_sex,
            partner_family,
            Date::from_days_since_epoch(partner_birth),
            new,
            0.0,
        );
        self.partners(a, b);
    }

    fn clamp_adult(&self, days: i64) -> i64 {
        days.min(self.today_days - (18.0 * YEAR_DAYS) as i64 - 2)
            .max(self.today_days - (99.0 * YEAR_DAYS) as i64)
    }

    fn partner_origin(&mut self, origin: Origin) -> Origin {
        // Mixed couples: mostly with a Dutch partner.
        if origin != Origin::Dutch && self.rng.chance(0.15) {
            Origin::Dutch
        } else if origin == Origin::Dutch && self.rng.chance(0.03) {
            Origin::SHARES[1 + self.rng.index(Origin::SHARES.len() - 1)].0
        } else {
            origin
        }
    }

    /// Links two partners and decides the woman's name usage.
    fn partners(&mut self, a: u32, b: u32) {
        self.persons[a as usize].spouse = Some(b);
        self.persons[b as usize].spouse = Some(a);
        let (pa, pb) = (&self.persons[a as usize], &self.persons[b as usize]);
        let (woman, man) = match (pa.sex, pb.sex) {
            (Sex::Female, Sex::Male) => (a, b),
            (Sex::Male, Sex::Female) => (b, a),
            _ => return,
        };
        let w = &self.persons[woman as usize];
        let older = w.birth_date.year < 1960;
        let dutch = matches!(
            w.origin,
            Origin::Dutch | Origin::Moluccan | Origin::Surinamese
        );
        // Own, partner-own, partner only, own-partner.
        let shares: [f64; 4] = match (dutch, older) {
            (true, true) => [0.40, 0.42, 0.12, 0.06],
            (true, false) => [0.62, 0.28, 0.05, 0.05],
            (false, _) => [0.85, 0.08, 0.04, 0.03],
        };
        let usage = match Weighted::new(shares).sample(&mut self.rng) {
            0 => NameUsage::Own,
            1 => NameUsage::PartnerOwn,
            2 => NameUsage::PartnerOnly,
            _ => NameUsage::OwnPartner,
        };
        if usage != NameUsage::Own {
            let pf = self.persons[man as usize].family.clone();
            let w = &mut self.persons[woman as usize];
            if pf.core != w.family.core {
                w.usage = usage;
                w.partner_family = Some(pf);
            }
        }
    }

    /// Parents and children at home.
    fn family(&mut self, hh: u32, origin: Origin, family: FamilyName, new: bool, single: bool) {
        let n_children = 1 + self.children.sample(&mut self.rng);
        let oldest_age = self.rng.range(0, 24) as f64 + self.rng.unit();
        let mother_first = self.rng.normal(30.0, 4.5).clamp(19.0, 41.0);
        // Birth dates of children, oldest first; twins share one.
        let mut births: Vec<(i64, bool)> = Vec::new();
        let mut t = self.today_days - (oldest_age * YEAR_DAYS) as i64;
        let mother_birth = t - (mother_first * YEAR_DAYS) as i64;
        let last_allowed = mother_birth + (44.0 * YEAR_DAYS) as i64;
        for _ in 0..n_children {
            if t > self.today_days || t > last_allowed {
                break;
            }
            let twins = self.rng.chance(TWIN_BIRTHS);
            births.push((t, twins));
            t += self.rng.range(400, 1800);
        }
        if births.is_empty() {
            births.push((self.today_days - (oldest_age * YEAR_DAYS) as i64, false));
        }
        let first_birth = births[0].0;
        let last_birth = births[births.len() - 1].0;
        let year = |d: f64| (d * YEAR_DAYS) as i64;
        // The father: usually a little older, and 18..45 years older than every child.
        let gap = year(self.rng.normal(2.5, 3.5));
        let father_birth = (mother_birth - gap)
            .max(last_birth - year(PARENT_AGE_YEARS.1 as f64 - 0.1))
            .min(first_birth - year(PARENT_AGE_YEARS.0 as f64 + 0.1));

        let father_origin = origin;
        let mother_origin = self.partner_origin(origin);
        let mother_family = if mother_origin == origin && self.rng.chance(0.02) {
            family.clone()
        } else {
            self.names.family(&mut self.rng, mother_origin)
        };
        let mut parents = Vec::new();
        let single_father = single && self.rng.chance(0.15);
        if !single || single_father {
            parents.push(self.person(
                hh,
                father_origin,
                Sex::Male,
                family.clone(),
                Date::from_days_since_epoch(father_birth),
                new,
                0.0,
            ));
        }
        if !single || !single_father {
            parents.push(self.person(
                hh,
                mother_origin,
                Sex::Female,
                mother_family.clone(),
                Date::from_days_since_epoch(mother_birth),
                new,
                0.0,
            ));
        }
        if let [a, b] = parents[..] {
            self.partners(a, b);
        }
        // Children carry the father's name (in 10% of two-parent families the mother's),
        // or the single parent's birth name.
        let mothers_name = if single {
            !single_father
        } else {
            self.rng.chance(0.10)
        };
        let child_family = if mothers_name { mother_family } else { family };
        let child_origin = father_origin;
        let mut used_names: Vec<&'static str> = Vec::new();
        for (days, twins) in births {
            let birth = Date::from_days_since_epoch(days);
            let first = self.child(
                hh,
                child_origin,
                &child_family,
                birth,
                new,
                &parents,
                &mut used_names,
                None,
            );
            if twins {
                let same_initial = self.rng.chance(TWINS_SAME_INITIAL);
                let initial = same_initial
                    .then(|| self.persons[first as usize].given_names[0].chars().next())
                    .flatten();
                let second = self.child(
                    hh,
                    child_origin,
                    &child_family,
                    birth,
                    new,
                    &parents,
                    &mut used_names,
                    initial,
                );
                self.persons[first as usize].twin = Some(second);
                self.persons[second as usize].twin = Some(first);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn child(
        &mut self,
        hh: u32,
        origin: Origin,
        family: &FamilyName,
        birth: Date,
        new: bool,
        parents: &[u32],
        used: &mut Vec<&'static str>,
        initial: Option<char>,
    ) -> u32 {
        let sex = self.sex();
        let family = if origin == Origin::Polish && sex == Sex::Female {
            FamilyName {
                prefix: family.prefix.clone(),
                core: polish_feminine(&family.core),
            }
        } else {
            family.clone()
        };
        let id = self.person(hh, origin, sex, family, birth, new, 0.3);
        // Siblings never share a first name; a twin may be made to share an initial.
        for attempt in 0..200 {
            let first = self.persons[id as usize].given_names[0];
            let clash = used.contains(&first);
            let wrong_initial = initial.is_some_and(|c| !first.starts_with(c));
            if !clash && (!wrong_initial || attempt > 150) {
                break;
            }
            let name = self
                .names
                .first_given(&mut self.rng, origin, sex, birth.year, 0.3);
            let p = &mut self.persons[id as usize];
            if !p.given_names.contains(&name) || p.given_names[0] == name {
                p.given_names[0] = name;
            }
            p.call_name = call_names(name).next();
        }
        used.push(self.persons[id as usize].given_names[0]);
        self.persons[id as usize].parents = parents.to_vec();
        id
    }

    /// Adds one person to household `hh` and returns the id.
    #[allow(clippy::too_many_arguments)]
    fn person(
        &mut self,
        hh: u32,
        origin: Origin,
        sex: Sex,
        family: FamilyName,
        birth: Date,
        newcomer: bool,
        dutch_given_share: f64,
    ) -> u32 {
        let id = self.persons.len() as u32;
        let first =
            self.names
                .first_given(&mut self.rng, origin, sex, birth.year, dutch_given_share);
        let mut given = vec![first];
        let extra = match (origin, super::names::cohort(birth.year)) {
            (Origin::Dutch | Origin::Moluccan, 0) => Weighted::new([0.20, 0.45, 0.35]),
            (Origin::Dutch | Origin::Moluccan, 1) => Weighted::new([0.30, 0.45, 0.25]),
            (Origin::Dutch | Origin::Moluccan, 2) => Weighted::new([0.40, 0.45, 0.15]),
            (Origin::Dutch | Origin::Moluccan, _) => Weighted::new([0.50, 0.40, 0.10]),
            _ => Weighted::new([0.75, 0.25, 0.0]),
        }
        .sample(&mut self.rng);
        for _ in 0..extra {
            let m = self.names.middle(&mut self.rng, origin, sex);
            if !given.contains(&m) {
                given.push(m);
            }
        }
        let family = if origin == Origin::Polish && sex == Sex::Female {
            FamilyName {
                prefix: family.prefix,
                core: polish_feminine(&family.core),
            }
        } else {
            family
        };
        let no_bsn = newcomer || self.rng.chance(NO_BSN_INDIVIDUAL);
        let bsn = (!no_bsn).then(|| self.new_bsn());
        let v_number = (no_bsn && self.rng.chance(V_NUMBER_SHARE)).then(|| self.new_v_number());
        self.persons.push(Person {
            id,
            household: hh,
            sex,
            origin,
            call_name: call_names(first).next(),
            given_names: given,
            family,
            usage: NameUsage::Own,
            partner_family: None,
            spouse: None,
            parents: Vec::new(),
            twin: None,
            birth_date: birth,
            bsn,
            v_number,
        });
        if let Some(h) = self.households.get_mut(hh as usize) {
            h.members.push(id);
        }
        id
    }

    fn new_bsn(&mut self) -> String {
        loop {
            let mut d = [0u8; 9];
            // Issued BSNs start with 0..3 in practice; any first digit passes the check.
            d[0] = self.rng.below(4) as u8;
            for slot in d.iter_mut().take(8).skip(1) {
                *slot = self.rng.below(10) as u8;
            }
            let sum: i64 = (0..8).map(|i| (9 - i as i64) * i64::from(d[i])).sum();
            let check = sum % 11;
            if check == 10 {
                continue;
            }
            d[8] = check as u8;
            if !passes_11_proef(&d) {
                continue;
            }
            let s: String = d.iter().map(|x| char::from(b'0' + x)).collect();
            if self.bsns.insert(s.clone()) {
                return s;
            }
        }
    }

    fn new_v_number(&mut self) -> String {
        loop {
            let n = 1_000_000_000 + self.rng.below(9_000_000_000);
            let s = n.to_string();
            if self.v_numbers.insert(s.clone()) {
                return s;
            }
        }
    }

    fn random_address(&mut self) -> Address {
        // Letters used in Dutch postcodes (F, I, O, Q, U and Y are not issued).
        const LETTERS: &[u8] = b"ABCDEGHJKLMNPRSTVWXZ";
        const ADDITIONS: &[&str] = &[
            "A", "B", "C", "D", "1", "2", "3", "4", "bis", "hs", "H", "I", "II",
        ];
        loop {
            let digits = 1000 + self.rng.below(9000);
            let a = LETTERS[self.rng.index(LETTERS.len())];
            let b = LETTERS[self.rng.index(LETTERS.len())];
            if a == b'S' && matches!(b, b'A' | b'D' | b'S') {
                continue;
            }
            let postcode = format!("{digits}{}{}", char::from(a), char::from(b));
            let w = self.rng.unit();
            let number = 1 + (w * w * 250.0) as u32;
            let addition = if self.rng.chance(0.10) {
                ADDITIONS[self.rng.index(ADDITIONS.len())].to_string()
            } else {
                String::new()
            };
            return Address {
                postcode,
                number,
                addition,
            };
        }
    }

    fn new_address(&mut self) -> Address {
        loop {
            let a = self.random_address();
            if self.addresses.insert(a.clone()) {
                return a;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::new(2026, 1, 1).unwrap()
    }

    #[test]
    fn families_are_consistent() {
        let pop = generate(3, 20_000, today());
        assert!(pop.persons.len() >= 20_000 && pop.persons.len() < 20_010);
        for p in &pop.persons {
            assert!(p.birth_date <= today());
            assert!(!p.given_names.is_empty());
            for &parent in &p.parents {
                let q = &pop.persons[parent as usize];
                let gap = p.birth_date.days_since_epoch() - q.birth_date.days_since_epoch();
                let years = gap as f64 / YEAR_DAYS;
                assert!(
                    (PARENT_AGE_YEARS.0 as f64..=PARENT_AGE_YEARS.1 as f64).contains(&years),
                    "parent {years:.1} years older"
                );
                assert_eq!(q.household, p.household);
            }
            if let Some(t) = p.twin {
                let q = &pop.persons[t as usize];
                assert_eq!(q.birth_date, p.birth_date);
                assert_eq!(q.parents, p.parents);
                assert_ne!(q.given_names[0], p.given_names[0]);
                assert_eq!(pop.relation(p.id, t), Relation::Twins);
            }
            if let Some(s) = p.spouse {
                assert_eq!(pop.persons[s as usize].spouse, Some(p.id));
                assert!(p.age(today()) >= 18, "{p:?} {:?}", pop.persons[s as usize]);
            }
        }
    }
}
