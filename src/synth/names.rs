//! Name tables for the synthetic population: Dutch family names in order of frequency,
//! a generated long tail of rarer Dutch names, names of other origins, and given names
//! per sex, birth cohort and origin.
//!
//! The ranked lists follow the well-known frequency order of Dutch family names (de Jong,
//! Jansen, de Vries, ...); the weights given to them are Zipf-like, not measured counts.

use super::rng::{Rng, Weighted};

/// The most common Dutch family names, most frequent first (tussenvoegsel included).
pub const DUTCH_FAMILY: &[&str] = &[
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van den Heuvel",
    "van der Veen",
    "van den Broek",
    "de Bruijn",
    "de Bruin",
    "van der Heijden",
    "Schouten",
    "van Beek",
    "Willems",
    "van Vliet",
    "van de Ven",
    "Hoekstra",
    "Maas",
    "Verhoeven",
    "Koster",
    "van Dam",
    "van der Wal",
    "Prins",
    "Blom",
    "Huisman",
    "Peeters",
    "de Jonge",
    "Kuipers",
    "van Veen",
    "Post",
    "Kuiper",
    "Veenstra",
    "Kramer",
    "van den Brink",
    "Scholten",
    "van Wijk",
    "Postma",
    "Martens",
    "Vink",
    "de Ruiter",
    "Timmermans",
    "Groen",
    "Gerritsen",
    "Jonker",
    "van Loon",
    "Boer",
    "van der Velde",
    "Willemsen",
    "Smeets",
    "de Lange",
    "de Vos",
    "Bosch",
    "van Dongen",
    "Schipper",
    "de Koning",
    "van der Laan",
    "Koning",
    "van der Velden",
    "Driessen",
    "van Doorn",
    "Hermans",
    "Evers",
    "van den Bosch",
    "van der Meulen",
    "Hofman",
    "Bosman",
    "Wouters",
    "Sanders",
    "van der Zee",
    "Mertens",
    "Verbeek",
    "de Haas",
    "Hoogendoorn",
    "Brink",
    "Molenaar",
    "Zwart",
    "de Kok",
    "Wolters",
    "Kroon",
    "Hoek",
    "van Wijngaarden",
    "Koot",
    "Verbruggen",
    "Claassen",
    "Koopman",
    "Lammers",
    "Verschuren",
    "Arts",
    "Aarts",
    "van Rijn",
    "Hoogland",
    "Rutten",
    "van Es",
    "Kooistra",
    "Mol",
    "Veldman",
    "Pieters",
    "van Rooij",
    "Bouwman",
    "Kuijpers",
    "de Wolf",
    "Mulders",
    "Kamphuis",
    "Nijhuis",
    "Brands",
    "Boersma",
    "Zijlstra",
    "Wijnen",
    "van Gils",
    "Heemskerk",
    "Faber",
    "Franken",
    "de Leeuw",
    "van der Horst",
    "Bosma",
    "Sijtsma",
    "Terpstra",
    "Feenstra",
    "Wiersma",
    "Hiemstra",
    "Holwerda",
    "Douma",
    "Kingma",
    "Westra",
    "van Gestel",
    "Verhagen",
    "Donkers",
    "Raaijmakers",
    "van Hout",
    "Coenen",
    "Vossen",
    "Hendrix",
    "Janssens",
    "Gielen",
    "Geurts",
    "Ramakers",
    "Stevens",
    "Houben",
    "Lemmens",
    "Hermens",
    "Cox",
    "Hanssen",
    "Pijnenburg",
    "van den Boom",
    "Aerts",
    "Claessens",
    "Custers",
    "Goossens",
    "van Kessel",
    "van Lieshout",
    "Verstappen",
    "Rijnders",
    "van der Ploeg",
    "Dijkman",
    "van Hees",
    "Roos",
    "Klein",
    "Meijers",
    "van Os",
    "Schoenmakers",
    "Tromp",
    "van der Steen",
    "Steenbergen",
    "de Rooij",
    "Vissers",
    "Boom",
    "Hoogeveen",
    "Oosterhuis",
    "Slot",
    "Pronk",
    "Verweij",
    "Jongsma",
    "van Rossum",
    "Keizer",
    "van Ginkel",
    "Meulenbroek",
    "Vonk",
    "Baas",
    "Lubbers",
    "de Heer",
    "van Zanten",
    "Bakkers",
    "Bruins",
    "Koenen",
    "Kuijper",
    "Vermeer",
    "Boon",
    "Hoogstra",
    "Rozendaal",
    "Ouwehand",
    "Staal",
    "Zuidema",
    "van der Bijl",
    "Bergsma",
    "Huizinga",
    "Nieuwenhuis",
    "Hartman",
    "Boonstra",
    "Bouma",
    "Rietveld",
    "Kemper",
    "van Vugt",
    "Elzinga",
    "Wijnands",
    "de Man",
    "van Eck",
    "Reinders",
    "Dam",
    "Dijkhuizen",
    "van den Akker",
    "van de Pol",
    "Verhoef",
    "Beekman",
    "Wagenaar",
    "van der Pol",
    "Teunissen",
    "Brinkman",
    "de Bie",
    "Schreuder",
    "de Beer",
    "Kaptein",
    "van Ommen",
    "Bijl",
    "Sluiter",
    "Kloosterman",
    "van Rijswijk",
    "Hulshof",
    "ter Horst",
    "ten Have",
    "van 't Hof",
    "in 't Veld",
    "van Schaik",
    "Schuurman",
    "Hazelaar",
    "Groenewegen",
    "Blokland",
    "van Kampen",
    "Vreeken",
    "Zandstra",
    "Kroeze",
    "Bronkhorst",
    "Oudshoorn",
    "Eijkelenboom",
    "Versteeg",
    "van Houten",
    "van Zuilen",
    "Hoefnagels",
    "Brouwers",
    "Blankenstein",
    "van Putten",
    "Wassenaar",
    "Hogenboom",
    "Rademaker",
    "Poort",
    "van Wingerden",
    "Schutte",
    "van de Wetering",
    "Heijnen",
    "Gijsbers",
    "Thijssen",
    "Noordhoek",
    "van der Schaaf",
    "Zeeman",
    "Bolhuis",
    "Kuiperij",
    "Pauw",
    "Uijtdewilligen",
    "van Dalen",
    "Tuinman",
    "Doornbos",
    "Spijkerman",
    "van Amstel",
    "Offringa",
    "Bakhuis",
    "de Roos",
    "Hekman",
    "van Wezel",
    "Bongers",
    "Jorritsma",
    "Akkerman",
    "Bleeker",
    "Haverkamp",
    "van Oosten",
    "Overbeek",
    "Leenders",
    "de Kruijf",
    "Wiegman",
    "Dirksen",
    "Heuvelmans",
    "van Bommel",
    "Lambregts",
    "Maessen",
    "Dolmans",
    "van Rooijen",
    "Kolk",
    "Mossel",
    "Kwakman",
    "Nooren",
    "van der Werf",
    "Veerman",
    "Stam",
    "Kappen",
    "Baars",
    "van der Kolk",
    "Hoeks",
    "Vlaar",
    "Lagerwerf",
    "Sloot",
    "Rijken",
    "de Klerk",
    "Verkerk",
    "Jager",
    "de Jager",
    "van Schie",
    "Bouwmeester",
    "Minnaard",
    "Verboom",
    "van Eijk",
    "Ruijs",
    "Boekhout",
    "Pos",
    "Swart",
    "Tijssen",
    "Gerrits",
    "Brugman",
];

/// Stems and endings from which the long tail of rarer Dutch family names is built.
const TAIL_STEMS: &[&str] = &[
    "Hoog", "Groen", "Kamp", "Wester", "Oost", "Noord", "Zuid", "Brink", "Veld", "Berg", "Molen",
    "Schuur", "Stee", "Lin", "Wil", "Ham", "Holt", "Ter", "Wijn", "Beuk", "Eik", "Es", "Hol",
    "Klooster", "Kerk", "Hooge", "Lange", "Korte", "Nieuwe", "Oude", "Rode", "Witte", "Zwarte",
    "Bruggen", "Dijk", "Haver", "Rogge", "Tarwe", "Vlas", "Hennep", "Schaap", "Koe", "Ros", "Valk",
    "Kraai", "Duiven", "Zwaan", "Hert", "Vos", "Wolf", "Bijen", "Honing", "Appel", "Peer", "Kers",
    "Linde", "Wilgen", "Populier", "Riet", "Heide", "Zand", "Klei", "Veen", "Moer", "Water", "Zee",
    "Meer", "Beek", "Vliet", "Hengel", "Dinkel", "Rijs", "Lutter", "Bolk", "Kemp", "Tolk", "Sluis",
    "Stroom", "Aal", "Blauw", "Bree", "Brug", "Dal", "Dorp", "Duin", "Gaas", "Geer", "Goor",
    "Graft", "Hage", "Hamer", "Hek", "Hoek", "Holl", "Kalk", "Kaal", "Klaas", "Knol", "Kool",
    "Kop", "Laar", "Leeu", "Lok", "Mar", "Mid", "Nijen", "Oever", "Pol", "Ree", "Rijn", "Sande",
    "Schel", "Slag", "Smed", "Spier", "Steen", "Stok", "Til", "Uit", "Vaar", "Vel", "Wel", "Wer",
    "Wit", "Zijl", "Zon", "Gerrit", "Harm", "Jelt", "Sjoerd", "Tjal", "Wieb",
];

const TAIL_ENDINGS: &[&str] = &[
    "huis", "man", "ink", "ers", "stra", "ma", "veld", "kamp", "hof", "broek", "dijk", "land",
    "horst", "beek", "berg", "hout", "boer", "maker", "wijk", "burg", "stein", "inga", "ing",
    "sma", "enga", "meijer", "boom", "bosch", "weg", "laar", "sen", "se", "ens", "ink", "erink",
    "werf", "haar", "lo", "kes", "je", "tjes", "dam", "rade", "ter",
];

/// Tussenvoegsels put before some tail names, with `""` for none (most often).
const TAIL_PREFIXES: &[&str] = &[
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "van", "van", "van de", "van der", "van den", "ter", "ten", "de",
    "op de", "in 't", "van 't",
];

/// Family names of other origins. Polish names are given in the masculine form; the
/// feminine form is derived ([`polish_feminine`]).
pub const TURKISH_FAMILY: &[&str] = &[
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
    "Polat",
    "Korkmaz",
    "Karataş",
    "Erdoğan",
    "Güneş",
    "Akın",
    "Bulut",
    "Aksoy",
    "Keskin",
    "Ünal",
    "Tekin",
    "Yavuz",
    "Acar",
    "Özer",
    "Bozkurt",
];
/// Moroccan family names.
pub const MOROCCAN_FAMILY: &[&str] = &[
    "El Amrani",
    "Bouzid",
    "El Idrissi",
    "Benali",
    "Boukhari",
    "El Khatib",
    "Ouali",
    "Azzouzi",
    "Amrani",
    "Bakkali",
    "El Hamdaoui",
    "Ait Taleb",
    "Ben Hamou",
    "Chaouki",
    "Tahiri",
    "Ziani",
    "El Moussaoui",
    "Haddouch",
    "Bouchtaoui",
    "Zaoui",
    "Abdellaoui",
    "Aouragh",
    "El Ouali",
    "Boulahrouz",
    "Ahajjam",
    "El Bouazzaoui",
    "Mokhtari",
    "Akrouh",
    "Bouhali",
    "El Kaddouri",
    "Belhaj",
    "Essafi",
    "Ouaali",
    "Zouhair",
    "El Hadioui",
];
/// Surinamese family names (Hindustani, Creole, Javanese).
pub const SURINAMESE_FAMILY: &[&str] = &[
    "Ramdin",
    "Mohan",
    "Jagroep",
    "Ramcharan",
    "Sewdien",
    "Bhagwandin",
    "Soekhoe",
    "Ramlal",
    "Kalloe",
    "Baldew",
    "Mahabier",
    "Jadnanansing",
    "Gangadin",
    "Ramsaran",
    "Doelwijt",
    "Sabajo",
    "Pinas",
    "Tjon",
    "Wijngaarde",
    "Zaandam",
    "Lont",
    "Vanenburg",
    "Amatmoekrim",
    "Refos",
    "Kromodimedjo",
    "Pawirodihardjo",
    "Sedney",
    "Karsters",
    "Kruisland",
    "Nijbroek",
];
/// Antillean and Aruban family names.
pub const ANTILLEAN_FAMILY: &[&str] = &[
    "Martina",
    "Maduro",
    "Statia",
    "Cijntje",
    "Isenia",
    "Rosaria",
    "Winklaar",
    "Felida",
    "Koeiman",
    "Sambo",
    "Janga",
    "Pietersz",
    "Bernabela",
    "Trinidad",
    "Francisca",
];
/// Moluccan family names (given names are Dutch).
pub const MOLUCCAN_FAMILY: &[&str] = &[
    "Latumahina",
    "Pattipeilohy",
    "Tuhumury",
    "Sahetapy",
    "Wattimena",
    "Tahitu",
    "Lekatompessy",
    "Soplantila",
    "Siahaya",
    "Pattiasina",
    "Manuhutu",
    "Leiwakabessy",
    "Tutuarima",
    "Huwae",
    "Ririmasse",
];
/// Polish family names, masculine form.
pub const POLISH_FAMILY: &[&str] = &[
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Wójcik",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Kwiatkowski",
    "Krawczyk",
    "Piotrowski",
    "Grabowski",
    "Nowakowski",
    "Pawłowski",
    "Michalski",
    "Wróbel",
    "Zając",
    "Król",
    "Wieczorek",
    "Jabłoński",
    "Majewski",
    "Olszewski",
    "Stępień",
    "Malinowski",
    "Jaworski",
];
/// German family names.
pub const GERMAN_FAMILY: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
];
/// Syrian and Iraqi family names.
pub const ARABIC_FAMILY: &[&str] = &[
    "Al Ahmad",
    "Al Hussein",
    "Haddad",
    "Khalil",
    "Hamdan",
    "Ibrahim",
    "Mustafa",
    "Othman",
    "Saleh",
    "Youssef",
    "Al Khatib",
    "Al Ali",
    "Darwish",
    "Hassan",
    "Nasser",
    "Abdullah",
    "Al Masri",
    "Sabbagh",
    "Kassem",
    "Mansour",
];
/// Eritrean family names.
pub const ERITREAN_FAMILY: &[&str] = &[
    "Tesfamariam",
    "Gebremeskel",
    "Haile",
    "Tekle",
    "Berhe",
    "Kidane",
    "Ghebrehiwet",
    "Mehari",
    "Tesfay",
    "Woldemichael",
    "Habte",
    "Yohannes",
    "Asfaha",
    "Ghebremedhin",
    "Negash",
];
/// Vietnamese family names (with their diacritics).
pub const VIETNAMESE_FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
    "Dương", "Lý",
];

/// Dutch given names per cohort: (male, female). Cohorts by birth year:
/// before 1956, 1956–1975, 1976–1995, 1996–2010, 2011 and later.
pub const DUTCH_GIVEN: [(&[&str], &[&str]); 5] = [
    (
        &[
            "Johannes",
            "Jan",
            "Cornelis",
            "Hendrik",
            "Willem",
            "Pieter",
            "Gerrit",
            "Jacobus",
            "Petrus",
            "Adrianus",
            "Hendrikus",
            "Antonius",
            "Wilhelmus",
            "Gerardus",
            "Franciscus",
            "Theodorus",
            "Johan",
            "Klaas",
            "Dirk",
            "Jacob",
            "Henk",
            "Kees",
            "Piet",
            "Arie",
            "Teunis",
            "Hermanus",
            "Albert",
            "Bernardus",
            "Marinus",
            "Leendert",
            "Frans",
            "Gijsbert",
            "Evert",
            "Harm",
            "Roelof",
            "Martinus",
            "Nicolaas",
            "Huibert",
            "Lambertus",
            "Jozef",
            "Anton",
            "Gerard",
            "Wim",
            "Bram",
        ],
        &[
            "Maria",
            "Johanna",
            "Cornelia",
            "Anna",
            "Wilhelmina",
            "Hendrika",
            "Elisabeth",
            "Catharina",
            "Geertruida",
            "Jacoba",
            "Petronella",
            "Adriana",
            "Aaltje",
            "Grietje",
            "Neeltje",
            "Trijntje",
            "Margaretha",
            "Antje",
            "Jannetje",
            "Alida",
            "Hendrikje",
            "Christina",
            "Dirkje",
            "Klaasje",
            "Gerda",
            "Riet",
            "Truus",
            "Corrie",
            "Mies",
            "Joke",
            "Ria",
            "Annie",
            "Bep",
            "Nel",
            "Tiny",
            "Dina",
            "Rika",
            "Anneke",
            "Greet",
            "Willemijntje",
            "Marietje",
            "Tonnie",
        ],
    ),
    (
        &[
            "Peter",
            "Johannes",
            "Jan",
            "Hans",
            "Marcel",
            "Gerard",
            "Ronald",
            "Robert",
            "Erik",
            "Rob",
            "René",
            "Frank",
            "Paul",
            "André",
            "Richard",
            "Martin",
            "Wim",
            "Ad",
            "Ruud",
            "Edwin",
            "Michel",
            "Patrick",
            "Jeroen",
            "Marco",
            "Arjan",
            "Mark",
            "Ton",
            "Theo",
            "Henk",
            "Jos",
            "Fred",
            "Harry",
            "Bert",
            "John",
            "Gert",
            "Eric",
            "Pieter",
            "Dennis",
            "Jacques",
            "Herman",
            "Guido",
            "Ivo",
            "Cornelis",
            "Jan-Willem",
            "Hendrik",
            "Leon",
            "Rudi",
            "Ferdinand",
        ],
        &[
            "Maria",
            "Anja",
            "Monique",
            "Sandra",
            "Linda",
            "Petra",
            "Marja",
            "Ingrid",
            "Ellen",
            "Mirjam",
            "Esther",
            "Marion",
            "Carla",
            "Wilma",
            "Yvonne",
            "Anita",
            "Marjolein",
            "Karin",
            "Angelique",
            "Jolanda",
            "Patricia",
            "Bianca",
            "Astrid",
            "Annemiek",
            "Saskia",
            "Marianne",
            "Miranda",
            "Margriet",
            "Nicole",
            "Caroline",
            "Claudia",
            "Hanneke",
            "Renate",
            "Brigitte",
            "Jacqueline",
            "Ans",
            "Els",
            "Annette",
            "Marleen",
            "Mariska",
            "Tineke",
            "Anne-Marie",
            "Ingeborg",
            "José",
            "Hélène",
            "Johanna",
        ],
    ),
    (
        &[
            "Mark",
            "Dennis",
            "Kevin",
            "Michael",
            "Jeroen",
            "Sander",
            "Bas",
            "Thomas",
            "Tim",
            "Martijn",
            "Stefan",
            "Niels",
            "Rick",
            "Bart",
            "Wouter",
            "Joost",
            "Jasper",
            "Maarten",
            "Jeffrey",
            "Ruben",
            "Joris",
            "Remco",
            "Vincent",
            "Roy",
            "Robin",
            "Nick",
            "Mike",
            "Sven",
            "Tom",
            "Mathijs",
            "Koen",
            "Daan",
            "Stijn",
            "Pim",
            "Rutger",
            "Erwin",
            "Ramon",
            "Danny",
            "Sebastiaan",
            "Thijs",
            "Patrick",
            "Richard",
            "Jan-Peter",
            "Arnoud",
            "Gijs",
            "Marijn",
            "Jorrit",
            "Lennart",
        ],
        &[
            "Linda",
            "Lisa",
            "Laura",
            "Kim",
            "Sanne",
            "Anouk",
            "Marloes",
            "Femke",
            "Iris",
            "Esther",
            "Eva",
            "Lotte",
            "Manon",
            "Chantal",
            "Kelly",
            "Nathalie",
            "Melissa",
            "Denise",
            "Ilse",
            "Judith",
            "Maaike",
            "Mirjam",
            "Suzanne",
            "Nienke",
            "Marieke",
            "Karlijn",
            "Inge",
            "Charlotte",
            "Daphne",
            "Jessica",
            "Sharon",
            "Naomi",
            "Stephanie",
            "Romy",
            "Lieke",
            "Maartje",
            "Janneke",
            "Eline",
            "Fleur",
            "Annemarie",
            "Anne",
            "Joyce",
            "Daniëlle",
            "Renske",
            "Mariëlle",
            "Noëlle",
        ],
    ),
    (
        &[
            "Thomas", "Tim", "Lars", "Jesse", "Bram", "Luuk", "Sem", "Daan", "Milan", "Thijs",
            "Stijn", "Ruben", "Niels", "Max", "Jelle", "Tom", "Rick", "Julian", "Kevin", "Jordy",
            "Dylan", "Mees", "Gijs", "Koen", "Sven", "Joep", "Jens", "Hidde", "Timo", "Stan",
            "Teun", "Wessel", "Floris", "Bas", "Nick", "Justin", "Levi", "Sam", "Robin", "Youri",
            "Rens", "Tygo", "Kay", "Sil", "Jurre", "Boaz", "Job", "Ties", "Thijmen", "Daniël",
            "Joël", "Noël",
        ],
        &[
            "Lisa", "Sanne", "Anne", "Emma", "Julia", "Lotte", "Eva", "Anouk", "Fleur", "Isa",
            "Sophie", "Demi", "Iris", "Femke", "Lieke", "Romy", "Britt", "Maud", "Noa", "Jasmijn",
            "Roos", "Tess", "Sara", "Esmee", "Anna", "Lynn", "Floor", "Nina", "Lara", "Zoë", "Amy",
            "Kim", "Merel", "Kiki", "Isabel", "Vera", "Elise", "Lisanne", "Sophia", "Feline",
            "Tamara", "Chloë", "Milou", "Amber", "Yara", "Naomi", "Zara", "Luna", "Anaïs",
            "Noëlle",
        ],
    ),
    (
        &[
            "Noah",
            "Sem",
            "Lucas",
            "Liam",
            "Daan",
            "Finn",
            "Levi",
            "Luuk",
            "Mees",
            "James",
            "Milan",
            "Sam",
            "Noud",
            "Jesse",
            "Bram",
            "Adam",
            "Benjamin",
            "Max",
            "Jens",
            "Thijs",
            "Siem",
            "Boaz",
            "Teun",
            "Olivier",
            "Gijs",
            "Ties",
            "Jack",
            "Morris",
            "Mats",
            "Tijn",
            "Sven",
            "Thomas",
            "Hugo",
            "Julian",
            "Otis",
            "Vince",
            "Luca",
            "Dex",
            "Jan",
            "Owen",
            "Floris",
            "Ruben",
            "Lars",
            "Guus",
            "Tobias",
            "Jayden",
            "Hidde",
            "Joep",
            "Daniël",
            "Mason",
            "Abel",
            "Loek",
            "Stan",
            "Cas",
            "Tim",
            "Pepijn",
            "Ryan",
            "Jurre",
            "Fedde",
            "Kai",
            "Moos",
            "Elias",
            "Alexander",
            "Ezra",
            "David",
            "Mohammed",
            "Ibrahim",
            "Mick",
            "Xavi",
            "Lenn",
            "Dani",
        ],
        &[
            "Emma",
            "Julia",
            "Mila",
            "Tess",
            "Sophie",
            "Zoë",
            "Sara",
            "Nora",
            "Yara",
            "Eva",
            "Liv",
            "Lotte",
            "Evi",
            "Noor",
            "Anna",
            "Saar",
            "Lieke",
            "Nina",
            "Fenna",
            "Olivia",
            "Lina",
            "Sophia",
            "Fleur",
            "Elin",
            "Isa",
            "Maud",
            "Roos",
            "Loïs",
            "Hailey",
            "Sofie",
            "Ella",
            "Jill",
            "Vera",
            "Lynn",
            "Norah",
            "Mia",
            "Luna",
            "Charlotte",
            "Nova",
            "Hannah",
            "Lize",
            "Elena",
            "Lauren",
            "Amy",
            "Ivy",
            "Feline",
            "Esmee",
            "Femke",
            "Lisa",
            "Jasmijn",
            "Floor",
            "Puck",
            "Livia",
            "Noa",
            "Linde",
            "Emily",
            "Romy",
            "Chloë",
            "Hanna",
            "Daphne",
            "Amira",
            "Sofia",
            "Maryam",
            "Juul",
            "Benthe",
            "Fien",
            "Indy",
            "Lara",
            "Suus",
            "Jade",
        ],
    ),
];

/// Second and third given names (Dutch): (male, female).
pub const DUTCH_MIDDLE: (&[&str], &[&str]) = (
    &[
        "Johannes",
        "Cornelis",
        "Hendrik",
        "Willem",
        "Jan",
        "Pieter",
        "Maria",
        "Jacobus",
        "Petrus",
        "Antonius",
        "Gerardus",
        "Adrianus",
        "Franciscus",
        "Theodorus",
        "Marinus",
        "Nicolaas",
        "Alexander",
        "Christiaan",
        "Frederik",
        "Lodewijk",
        "Sebastiaan",
        "Hubertus",
        "Leonardus",
        "Bernardus",
        "Martinus",
        "Jozef",
        "Michiel",
        "Thomas",
        "Daniël",
        "Jacob",
        "Gerrit",
        "Dirk",
        "Albert",
        "Karel",
    ],
    &[
        "Maria",
        "Johanna",
        "Cornelia",
        "Anna",
        "Elisabeth",
        "Catharina",
        "Wilhelmina",
        "Hendrika",
        "Petronella",
        "Adriana",
        "Geertruida",
        "Jacoba",
        "Margaretha",
        "Christina",
        "Louise",
        "Sophie",
        "Charlotte",
        "Francisca",
        "Theodora",
        "Helena",
        "Josephine",
        "Emma",
        "Marie",
        "Anne",
        "Johanna",
        "Wilhelmina",
        "Aleida",
        "Hester",
    ],
);

/// Given names of other origins: (male, female).
pub const TURKISH_GIVEN: (&[&str], &[&str]) = (
    &[
        "Mehmet", "Mustafa", "Ahmet", "Ali", "Hüseyin", "Hasan", "İbrahim", "İsmail", "Murat",
        "Osman", "Yusuf", "Ömer", "Emre", "Burak", "Kerem", "Eymen", "Mert", "Can", "Furkan",
        "Enes", "Emir", "Berat", "Yiğit", "Serkan", "Hakan", "Kemal", "Erkan", "Volkan", "Halil",
        "Recep",
    ],
    &[
        "Ayşe", "Fatma", "Emine", "Hatice", "Zeynep", "Elif", "Merve", "Büşra", "Esra", "Özlem",
        "Gül", "Selin", "Ecrin", "Zehra", "Eylül", "Azra", "Meryem", "Sevgi", "Hülya", "Derya",
        "Songül", "Nurcan", "Yasemin", "Melek", "Dilara", "Ebru", "Tuğba", "Şeyma", "Gülsüm",
        "Sibel",
    ],
);
/// Moroccan given names.
pub const MOROCCAN_GIVEN: (&[&str], &[&str]) = (
    &[
        "Mohammed",
        "Mohamed",
        "Ahmed",
        "Youssef",
        "Rachid",
        "Mustapha",
        "Abdelkader",
        "Said",
        "Hamza",
        "Bilal",
        "Ilias",
        "Adam",
        "Ayoub",
        "Amine",
        "Zakaria",
        "Anas",
        "Khalid",
        "Hassan",
        "Driss",
        "Abdellah",
        "Nordin",
        "Karim",
        "Soufiane",
        "Mehdi",
        "Othman",
        "Yassine",
        "Redouan",
        "Hicham",
        "Brahim",
        "Omar",
    ],
    &[
        "Fatima", "Khadija", "Nadia", "Naima", "Malika", "Samira", "Salma", "Soumaya", "Yasmina",
        "Imane", "Hafsa", "Noor", "Maryam", "Aya", "Sara", "Rachida", "Zineb", "Hanane", "Loubna",
        "Ikram", "Nora", "Ilham", "Houda", "Souad", "Amal", "Latifa", "Hajar", "Sanae", "Meryem",
        "Kawtar",
    ],
);
/// Surinamese given names.
pub const SURINAMESE_GIVEN: (&[&str], &[&str]) = (
    &[
        "Radjesh",
        "Anil",
        "Sanjay",
        "Ravi",
        "Rakesh",
        "Sunil",
        "Ashwin",
        "Dinesh",
        "Romano",
        "Marvin",
        "Glenn",
        "Ricardo",
        "Jerrel",
        "Jayden",
        "Gilbert",
        "Ronald",
        "Errol",
        "Clyde",
        "Orlando",
        "Virgil",
        "Roy",
        "Shaquille",
        "Dwight",
        "Stanley",
        "Ramon",
        "Kenneth",
        "Lucien",
        "Iwan",
        "Sergio",
        "Delano",
    ],
    &[
        "Shanti",
        "Sunita",
        "Anjali",
        "Priya",
        "Reshma",
        "Kavita",
        "Sharmila",
        "Nirmala",
        "Asha",
        "Radha",
        "Shirley",
        "Gracia",
        "Naomi",
        "Chantal",
        "Jennifer",
        "Sharon",
        "Natasha",
        "Ingrid",
        "Marcia",
        "Lucia",
        "Tatiana",
        "Rosita",
        "Gwendolyn",
        "Cindy",
        "Denise",
        "Esmeralda",
        "Jolanda",
        "Graciela",
        "Sheryl",
        "Meriam",
    ],
);
/// Antillean given names.
pub const ANTILLEAN_GIVEN: (&[&str], &[&str]) = (
    &[
        "Jurgen",
        "Giovanni",
        "Rignald",
        "Edsel",
        "Shurandy",
        "Churandy",
        "Roderick",
        "Ergilio",
        "Jandino",
        "Ruthmar",
        "Jean-Marc",
        "Eddy",
        "Ronny",
        "Gregory",
        "Luigi",
    ],
    &[
        "Gisela",
        "Yolanda",
        "Shahaira",
        "Jessica",
        "Sharon",
        "Raquel",
        "Nathaly",
        "Suhayla",
        "Ivette",
        "Jacqueline",
        "Shakira",
        "Gerlinda",
        "Ashanti",
        "Rosalinda",
        "Maritza",
    ],
);
/// Polish given names.
pub const POLISH_GIVEN: (&[&str], &[&str]) = (
    &[
        "Piotr",
        "Krzysztof",
        "Tomasz",
        "Paweł",
        "Łukasz",
        "Michał",
        "Marcin",
        "Kamil",
        "Jakub",
        "Adam",
        "Marek",
        "Grzegorz",
        "Andrzej",
        "Wojciech",
        "Mateusz",
        "Dawid",
        "Bartosz",
        "Sebastian",
        "Szymon",
        "Damian",
        "Rafał",
        "Jarosław",
        "Przemysław",
        "Robert",
        "Mariusz",
        "Krystian",
        "Artur",
        "Zbigniew",
        "Dariusz",
        "Filip",
    ],
    &[
        "Anna",
        "Katarzyna",
        "Małgorzata",
        "Agnieszka",
        "Magdalena",
        "Joanna",
        "Monika",
        "Aleksandra",
        "Zuzanna",
        "Ewa",
        "Barbara",
        "Natalia",
        "Karolina",
        "Justyna",
        "Marta",
        "Dorota",
        "Beata",
        "Paulina",
        "Weronika",
        "Julia",
        "Patrycja",
        "Sylwia",
        "Iwona",
        "Renata",
        "Izabela",
        "Agata",
        "Edyta",
        "Kinga",
        "Oliwia",
        "Wiktoria",
    ],
);
/// German given names.
pub const GERMAN_GIVEN: (&[&str], &[&str]) = (
    &[
        "Stefan",
        "Michael",
        "Thomas",
        "Andreas",
        "Matthias",
        "Jürgen",
        "Klaus",
        "Uwe",
        "Jörg",
        "Frank",
        "Lukas",
        "Jonas",
        "Leon",
        "Felix",
        "Maximilian",
    ],
    &[
        "Sabine", "Petra", "Claudia", "Andrea", "Susanne", "Birgit", "Katrin", "Jutta", "Anke",
        "Ute", "Lena", "Leonie", "Hannah", "Jana", "Annika",
    ],
);
/// Syrian and Iraqi given names.
pub const ARABIC_GIVEN: (&[&str], &[&str]) = (
    &[
        "Ahmad", "Mohammad", "Ali", "Omar", "Khaled", "Mahmoud", "Hussein", "Yasser", "Bassam",
        "Samer", "Rami", "Fadi", "Tarek", "Majd", "Karam", "Hadi", "Amjad", "Walid", "Nizar",
        "Rashid",
    ],
    &[
        "Fatima", "Rania", "Lina", "Rasha", "Nour", "Hiba", "Dima", "Ruba", "Alaa", "Heba", "Reem",
        "Sana", "Yara", "Layla", "Zainab", "Amina", "Ghada", "Maha", "Sawsan", "Hala",
    ],
);
/// Eritrean given names.
pub const ERITREAN_GIVEN: (&[&str], &[&str]) = (
    &[
        "Yonas", "Dawit", "Tesfay", "Filmon", "Samuel", "Michael", "Robel", "Habtom", "Tekle",
        "Mehari", "Aron", "Biniam", "Semere", "Yohannes", "Natnael",
    ],
    &[
        "Helen", "Senait", "Saba", "Luwam", "Yordanos", "Rahel", "Selam", "Ruta", "Hiwet",
        "Milena", "Feven", "Eden", "Nebiat", "Freweini", "Winta",
    ],
);
/// Vietnamese given names.
pub const VIETNAMESE_GIVEN: (&[&str], &[&str]) = (
    &[
        "Minh", "Tuấn", "Hùng", "Đức", "Long", "Nam", "Quang", "Thành", "Huy", "Khánh",
    ],
    &[
        "Linh", "Lan", "Mai", "Hoa", "Thu", "Ngọc", "Trang", "Hương", "Thảo", "Anh",
    ],
);

/// Official first names and the call names (roepnamen) used for them instead.
pub const CALL_NAMES: &[(&str, &str)] = &[
    ("Johannes", "Hans"),
    ("Johannes", "Jan"),
    ("Cornelis", "Kees"),
    ("Hendrik", "Henk"),
    ("Hendrikus", "Henk"),
    ("Wilhelmus", "Wim"),
    ("Petrus", "Piet"),
    ("Jacobus", "Jaap"),
    ("Jacobus", "Koos"),
    ("Gerardus", "Gerard"),
    ("Adrianus", "Adrie"),
    ("Antonius", "Toon"),
    ("Franciscus", "Frans"),
    ("Theodorus", "Theo"),
    ("Bernardus", "Ben"),
    ("Martinus", "Martin"),
    ("Nicolaas", "Klaas"),
    ("Lambertus", "Bert"),
    ("Hermanus", "Herman"),
    ("Maria", "Marja"),
    ("Maria", "Marijke"),
    ("Johanna", "Joke"),
    ("Johanna", "Anneke"),
    ("Wilhelmina", "Willy"),
    ("Cornelia", "Corrie"),
    ("Cornelia", "Nel"),
    ("Hendrika", "Riek"),
    ("Elisabeth", "Els"),
    ("Elisabeth", "Lies"),
    ("Catharina", "Tineke"),
    ("Catharina", "Trees"),
    ("Geertruida", "Truus"),
    ("Jacoba", "Coby"),
    ("Petronella", "Nel"),
    ("Adriana", "Jeanne"),
    ("Margaretha", "Greet"),
    ("Mohammed", "Mo"),
];

/// An origin (herkomst) of a household, which decides its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Dutch.
    Dutch,
    /// Turkish.
    Turkish,
    /// Moroccan.
    Moroccan,
    /// Surinamese.
    Surinamese,
    /// Antillean or Aruban.
    Antillean,
    /// Moluccan (Dutch given names).
    Moluccan,
    /// Polish.
    Polish,
    /// German.
    German,
    /// Syrian or Iraqi.
    Arabic,
    /// Eritrean.
    Eritrean,
    /// Vietnamese.
    Vietnamese,
}

impl Origin {
    /// Every origin with its share of households.
    pub const SHARES: [(Origin, f64); 11] = [
        (Origin::Dutch, 0.80),
        (Origin::Turkish, 0.035),
        (Origin::Moroccan, 0.035),
        (Origin::Surinamese, 0.02),
        (Origin::Antillean, 0.01),
        (Origin::Moluccan, 0.015),
        (Origin::Polish, 0.02),
        (Origin::German, 0.02),
        (Origin::Arabic, 0.025),
        (Origin::Eritrean, 0.01),
        (Origin::Vietnamese, 0.01),
    ];

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Dutch => "dutch",
            Origin::Turkish => "turkish",
            Origin::Moroccan => "moroccan",
            Origin::Surinamese => "surinamese",
            Origin::Antillean => "antillean",
            Origin::Moluccan => "moluccan",
            Origin::Polish => "polish",
            Origin::German => "german",
            Origin::Arabic => "arabic",
            Origin::Eritrean => "eritrean",
            Origin::Vietnamese => "vietnamese",
        }
    }

    /// Whether households of this origin more often hold recent arrivals without a BSN.
    pub fn recent_migration(self) -> bool {
        matches!(
            self,
            Origin::Arabic | Origin::Eritrean | Origin::Polish | Origin::Turkish
        )
    }

    fn family_list(self) -> &'static [&'static str] {
        match self {
            Origin::Dutch => DUTCH_FAMILY,
            Origin::Turkish => TURKISH_FAMILY,
            Origin::Moroccan => MOROCCAN_FAMILY,
            Origin::Surinamese => SURINAMESE_FAMILY,
            Origin::Antillean => ANTILLEAN_FAMILY,
            Origin::Moluccan => MOLUCCAN_FAMILY,
            Origin::Polish => POLISH_FAMILY,
            Origin::German => GERMAN_FAMILY,
            Origin::Arabic => ARABIC_FAMILY,
            Origin::Eritrean => ERITREAN_FAMILY,
            Origin::Vietnamese => VIETNAMESE_FAMILY,
        }
    }

    fn given_lists(self) -> Option<(&'static [&'static str], &'static [&'static str])> {
        match self {
            Origin::Dutch | Origin::Moluccan => None,
            Origin::Turkish => Some(TURKISH_GIVEN),
            Origin::Moroccan => Some(MOROCCAN_GIVEN),
            Origin::Surinamese => Some(SURINAMESE_GIVEN),
            Origin::Antillean => Some(ANTILLEAN_GIVEN),
            Origin::Polish => Some(POLISH_GIVEN),
            Origin::German => Some(GERMAN_GIVEN),
            Origin::Arabic => Some(ARABIC_GIVEN),
            Origin::Eritrean => Some(ERITREAN_GIVEN),
            Origin::Vietnamese => Some(VIETNAMESE_GIVEN),
        }
    }
}

/// Sex as registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
}

/// A family name: tussenvoegsel(s) and the rest, e.g. ("van den", "Berg").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FamilyName {
    /// Tussenvoegsel(s), lowercase as written before a given name; may be empty.
    pub prefix: String,
    /// The name without its tussenvoegsel.
    pub core: String,
}

impl FamilyName {
    /// Splits a name as written in the tables ("van 't Hof", "El Amrani", "Jansen").
    ///
    /// Leading words that start in lowercase are the tussenvoegsel. Names of other
    /// origins whose first word is capitalised ("El Amrani") keep it in the core.
    pub fn parse(s: &str) -> FamilyName {
        let words: Vec<&str> = s.split(' ').collect();
        let n = words
            .iter()
            .take_while(|w| w.chars().next().is_some_and(|c| !c.is_uppercase()))
            .count()
            .min(words.len().saturating_sub(1));
        FamilyName {
            prefix: words[..n].join(" "),
            core: words[n..].join(" "),
        }
    }

    /// The name as written in running text: "van den Berg".
    pub fn inline(&self) -> String {
        if self.prefix.is_empty() {
            self.core.clone()
        } else {
            format!("{} {}", self.prefix, self.core)
        }
    }
}

/// The feminine form of a Polish family name in -ski/-cki/-dzki (Kowalski → Kowalska).
pub fn polish_feminine(name: &str) -> String {
    match name.strip_suffix('i') {
        Some(stem) if stem.ends_with("sk") || stem.ends_with("ck") || stem.ends_with("dzk") => {
            format!("{stem}a")
        }
        _ => name.to_string(),
    }
}

/// Samplers over the tables, built once per population.
pub struct NameTables {
    dutch_top: Weighted,
    tail: Vec<FamilyName>,
    tail_weights: Weighted,
    given: Vec<(Weighted, Weighted)>,
    wide: (Vec<&'static str>, Vec<&'static str>),
}

/// Share of Dutch family names drawn from the ranked list (the rest from the tail).
/// With the weights below, de Jong is borne by about 0.5% of Dutch-named people, as
/// in the Netherlands, and rank 300 by about 0.03%.
const DUTCH_TOP_SHARE: f64 = 0.20;

/// Share of Dutch given names drawn from the cohort's ranked list; the rest come
/// uniformly from all Dutch given names of that sex, a stand-in for the long tail.
const GIVEN_TOP_SHARE: f64 = 0.55;

impl Default for NameTables {
    fn default() -> Self {
        NameTables::new()
    }
}

impl NameTables {
    /// Builds the samplers (the tail list is generated deterministically from the tables).
    pub fn new() -> NameTables {
        let mut tail = Vec::new();
        for (i, stem) in TAIL_STEMS.iter().enumerate() {
            for (j, end) in TAIL_ENDINGS.iter().enumerate() {
                // A fixed, seed-independent choice of tussenvoegsel per combination.
                let p = TAIL_PREFIXES[(i * 7 + j * 13) % TAIL_PREFIXES.len()];
                let core = format!("{stem}{end}");
                let core = core
                    .replace("ee", "e")
                    .replace("ss", "s")
                    .replace("ll", "l");
                tail.push(FamilyName {
                    prefix: p.to_string(),
                    core,
                });
            }
        }
        tail.sort_by(|a, b| (&a.core, &a.prefix).cmp(&(&b.core, &b.prefix)));
        tail.dedup_by(|a, b| a.core == b.core);
        let tail_weights = Weighted::zipf(tail.len(), 0.3, 20.0);
        let given = DUTCH_GIVEN
            .iter()
            .map(|(m, f)| {
                (
                    Weighted::zipf(m.len(), 0.6, 3.0),
                    Weighted::zipf(f.len(), 0.6, 3.0),
                )
            })
            .collect();
        let mut wide: (Vec<&'static str>, Vec<&'static str>) = (Vec::new(), Vec::new());
        for (m, f) in DUTCH_GIVEN.iter().copied().chain([DUTCH_MIDDLE]) {
            wide.0.extend(m.iter().copied());
            wide.1.extend(f.iter().copied());
        }
        for list in [&mut wide.0, &mut wide.1] {
            list.sort_unstable();
            list.dedup();
        }
        NameTables {
            dutch_top: Weighted::zipf(DUTCH_FAMILY.len(), 0.5, 0.0),
            tail,
            tail_weights,
            given,
            wide,
        }
    }

    /// How many distinct Dutch family names can be drawn.
    pub fn dutch_family_count(&self) -> usize {
        DUTCH_FAMILY.len() + self.tail.len()
    }

    /// Draws a family name for a household of `origin` (masculine form for Polish).
    pub fn family(&self, rng: &mut Rng, origin: Origin) -> FamilyName {
        if origin == Origin::Dutch {
            if rng.chance(DUTCH_TOP_SHARE) {
                FamilyName::parse(DUTCH_FAMILY[self.dutch_top.sample(rng)])
            } else {
                self.tail[self.tail_weights.sample(rng)].clone()
            }
        } else {
            let list = origin.family_list();
            FamilyName::parse(list[rng.index(list.len())])
        }
    }

    /// Draws a first given name for someone of `origin`, `sex`, born in `year`.
    /// Children of the second generation get a name from the Dutch lists at
    /// `dutch_share` probability.
    pub fn first_given(
        &self,
        rng: &mut Rng,
        origin: Origin,
        sex: Sex,
        year: u16,
        dutch_share: f64,
    ) -> &'static str {
        match origin.given_lists() {
            Some((m, f)) if !rng.chance(dutch_share) => {
                let list = if sex == Sex::Male { m } else { f };
                // Mildly skewed: the first names of each list are the more common.
                let w = rng.unit().powf(1.3);
                list[((w * list.len() as f64) as usize).min(list.len() - 1)]
            }
            _ => {
                if !rng.chance(GIVEN_TOP_SHARE) {
                    let wide = if sex == Sex::Male {
                        &self.wide.0
                    } else {
                        &self.wide.1
                    };
                    return wide[rng.index(wide.len())];
                }
                let mut c = cohort(year);
                // Some names from a neighbouring cohort: fashions overlap.
                if rng.chance(0.15) {
                    c = if c == 0 || (c < 4 && rng.chance(0.5)) {
                        c + 1
                    } else {
                        c - 1
                    };
                }
                let (m, f) = DUTCH_GIVEN[c];
                let (wm, wf) = &self.given[c];
                if sex == Sex::Male {
                    m[wm.sample(rng)]
                } else {
                    f[wf.sample(rng)]
                }
            }
        }
    }

    /// Draws a second or third given name.
    pub fn middle(&self, rng: &mut Rng, origin: Origin, sex: Sex) -> &'static str {
        let (m, f) = match origin {
            Origin::Dutch | Origin::Moluccan | Origin::Surinamese | Origin::Antillean => {
                DUTCH_MIDDLE
            }
            other => other.given_lists().unwrap_or(DUTCH_MIDDLE),
        };
        let list = if sex == Sex::Male { m } else { f };
        list[rng.index(list.len())]
    }
}

/// The cohort index into [`DUTCH_GIVEN`] for a birth year.
pub fn cohort(year: u16) -> usize {
    match year {
        ..=1955 => 0,
        1956..=1975 => 1,
        1976..=1995 => 2,
        1996..=2010 => 3,
        _ => 4,
    }
}

/// The call names used for an official first name, if any.
pub fn call_names(official: &str) -> impl Iterator<Item = &'static str> + '_ {
    CALL_NAMES
        .iter()
        .filter(move |(o, _)| *o == official)
        .map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn enough_distinct_names() {
        let top: HashSet<&str> = DUTCH_FAMILY.iter().copied().collect();
        assert!(top.len() >= 300, "{} Dutch family names", top.len());
        let t = NameTables::new();
        assert!(t.dutch_family_count() > 2_000);
        for sex in 0..2 {
            let mut all = HashSet::new();
            for (m, f) in DUTCH_GIVEN {
                all.extend(if sex == 0 { m } else { f }.iter().copied());
            }
            for (m, f) in [
                TURKISH_GIVEN,
                MOROCCAN_GIVEN,
                SURINAMESE_GIVEN,
                ANTILLEAN_GIVEN,
                POLISH_GIVEN,
                GERMAN_GIVEN,
                ARABIC_GIVEN,
                ERITREAN_GIVEN,
                VIETNAMESE_GIVEN,
            ] {
                all.extend(if sex == 0 { m } else { f }.iter().copied());
            }
            assert!(all.len() >= 150, "sex {sex}: {} given names", all.len());
        }
        let shares: f64 = Origin::SHARES.iter().map(|(_, s)| s).sum();
        assert!((shares - 1.0).abs() < 1e-9);
    }

    /// Prints how concentrated the name distributions are (sum of squared shares:
    /// the chance that two random people share the name).
    #[test]
    fn concentration_is_realistic() {
        use std::collections::HashMap;
        let t = NameTables::new();
        let mut rng = Rng::new(1, 0);
        let n = 200_000;
        let mut fam: HashMap<String, u32> = HashMap::new();
        let mut giv: HashMap<&str, u32> = HashMap::new();
        for _ in 0..n {
            *fam.entry(t.family(&mut rng, Origin::Dutch).core)
                .or_default() += 1;
            *giv.entry(t.first_given(&mut rng, Origin::Dutch, Sex::Female, 1987, 0.0))
                .or_default() += 1;
        }
        let conc = |m: &mut dyn Iterator<Item = u32>| -> f64 {
            m.map(|c| (c as f64 / n as f64).powi(2)).sum()
        };
        let f = conc(&mut fam.values().copied());
        let g = conc(&mut giv.values().copied());
        let top = fam.values().max().copied().unwrap_or(0) as f64 / n as f64;
        eprintln!(
            "family: sum p^2 = {f:.5}, top share {top:.4}; given (women 1987): sum p^2 = {g:.5}"
        );
        assert!(
            top < 0.01,
            "the most common family name is too common: {top}"
        );
        assert!(f < 0.002 && g < 0.02, "{f} {g}");
    }

    #[test]
    fn family_names_split() {
        let f = FamilyName::parse("van 't Hof");
        assert_eq!((f.prefix.as_str(), f.core.as_str()), ("van 't", "Hof"));
        let f = FamilyName::parse("El Amrani");
        assert_eq!((f.prefix.as_str(), f.core.as_str()), ("", "El Amrani"));
        assert_eq!(FamilyName::parse("de Vries").inline(), "de Vries");
        assert_eq!(polish_feminine("Kowalski"), "Kowalska");
        assert_eq!(polish_feminine("Nowak"), "Nowak");
        assert_eq!(polish_feminine("Jabłoński"), "Jabłońska");
    }
}
