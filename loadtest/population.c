/* population.c - see population.h. The word lists are common given names and
 * family names of each language; the weights and airports describe a
 * European flag carrier's loyalty programme with a strong home market. */
#include "population.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LIST(a)                                                                                    \
    {                                                                                              \
        a, (unsigned)(sizeof(a) / sizeof((a)[0]))                                                  \
    }

static const char *const en_given[] = {
    "James",   "Mary",   "John",    "Patricia",  "Robert",  "Jennifer", "Michael", "Linda",
    "William", "Emily",  "David",   "Elizabeth", "Richard", "Susan",    "Joseph",  "Jessica",
    "Thomas",  "Sarah",  "Charles", "Karen",     "Daniel",  "Olivia",   "Matthew", "Sophie",
    "Oliver",  "Amelia", "George",  "Charlotte", "Liam",    "Grace",    "Henry",   "Chloe",
};
static const char *const en_family[] = {
    "Smith",    "Johnson",  "Williams", "Brown",  "Jones",     "Miller", "Davis",  "Wilson",
    "Taylor",   "Anderson", "Thomas",   "Moore",  "Jackson",   "White",  "Harris", "Martin",
    "Thompson", "Clarke",   "Walker",   "Wright", "Robinson",  "Hughes", "Evans",  "Edwards",
    "O'Brien",  "O'Connor", "Murphy",   "Kelly",  "MacDonald", "Baker",  "Carter", "Whitfield",
};
static const char *const en_airports[] = {"LHR", "LHR", "LHR", "LGW", "MAN", "EDI",
                                          "DUB", "JFK", "JFK", "BOS", "ORD", "LAX",
                                          "MIA", "SFO", "IAD", "YYZ", "SYD", "MEL"};

static const char *const it_given[] = {
    "Giulia", "Marco",    "Francesca", "Alessandro", "Chiara",   "Luca",      "Sofia",   "Matteo",
    "Aurora", "Lorenzo",  "Giorgia",   "Andrea",     "Martina",  "Davide",    "Alessia", "Federico",
    "Elena",  "Riccardo", "Valentina", "Simone",     "Beatrice", "Niccolò",   "Ilaria",  "Gabriele",
    "Sara",   "Tommaso",  "Anna",      "Giuseppe",   "Maria",    "Salvatore", "Rosa",    "Antonio",
};
static const char *const it_family[] = {
    "Rossi",    "Russo",  "Ferrari",  "Esposito", "Bianchi",  "Romano",   "Colombo", "Ricci",
    "Marino",   "Greco",  "Bruno",    "Gallo",    "Conti",    "De Luca",  "Mancini", "Costa",
    "Giordano", "Rizzo",  "Lombardi", "Moretti",  "Barbieri", "Fontana",  "Santoro", "Mariani",
    "Rinaldi",  "Caruso", "Ferrara",  "Galli",    "Martini",  "D'Angelo", "Sanna",   "Pellegrini",
};
static const char *const it_airports[] = {"FCO", "FCO", "FCO", "FCO", "FCO", "MXP", "MXP",
                                          "MXP", "LIN", "NAP", "NAP", "VCE", "CTA", "BLQ",
                                          "PMO", "TRN", "BRI", "FLR", "CAG", "PSA"};

static const char *const de_given[] = {
    "Lukas",  "Anna",   "Maximilian", "Lea",    "Felix",     "Hannah", "Jonas",    "Sophie",
    "Paul",   "Marie",  "Leon",       "Emma",   "Tobias",    "Laura",  "Jan",      "Katharina",
    "Stefan", "Julia",  "Michael",    "Sabine", "Jürgen",    "Ursula", "Matthias", "Petra",
    "Klaus",  "Monika", "Björn",      "Jörg",   "Franziska", "Günter", "Hans",     "Heike",
};
static const char *const de_family[] = {
    "Müller",   "Schmidt",  "Schneider", "Fischer",    "Weber", "Meyer",   "Wagner",  "Becker",
    "Schulz",   "Hoffmann", "Schäfer",   "Koch",       "Bauer", "Richter", "Klein",   "Wolf",
    "Schröder", "Neumann",  "Schwarz",   "Zimmermann", "Braun", "Krüger",  "Hofmann", "Hartmann",
    "Lange",    "Schmitt",  "Werner",    "Krause",     "Meier", "Lehmann", "Vogel",   "Weiß",
};
static const char *const de_airports[] = {"FRA", "FRA", "FRA", "MUC", "MUC", "MUC", "BER",
                                          "BER", "HAM", "DUS", "STR", "CGN", "ZRH", "VIE"};

static const char *const fr_given[] = {
    "Camille", "Léa",    "Louis",  "Manon",  "Hugo",     "Chloé",   "Lucas",   "Inès",
    "Gabriel", "Jade",   "Arthur", "Zoé",    "Jules",    "Louise",  "Théo",    "Émilie",
    "Nicolas", "Céline", "Julien", "Hélène", "François", "Aurélie", "Mathieu", "Sébastien",
    "Amélie",  "Jérôme", "Anaïs",  "Benoît", "Margaux",  "Étienne", "Sophie",  "Pierre",
};
static const char *const fr_family[] = {
    "Martin",   "Bernard", "Dubois",  "Thomas",   "Robert",   "Richard",   "Petit",  "Durand",
    "Leroy",    "Moreau",  "Simon",   "Laurent",  "Lefèvre",  "Michel",    "Garcia", "David",
    "Bertrand", "Roux",    "Vincent", "Fournier", "Morel",    "Girard",    "André",  "Mercier",
    "Dupont",   "Lambert", "Bonnet",  "François", "Lefebvre", "Chevalier", "Faure",  "Rousseau",
};
static const char *const fr_airports[] = {"CDG", "CDG", "CDG", "CDG", "ORY", "ORY", "NCE",
                                          "LYS", "MRS", "TLS", "BOD", "GVA", "BRU", "YUL"};

static const char *const es_given[] = {
    "María",   "José",   "Carmen", "Antonio", "Lucía",  "Manuel", "Sofía",      "Francisco",
    "Martina", "David",  "Paula",  "Javier",  "Elena",  "Daniel", "Laura",      "Alejandro",
    "Ana",     "Pablo",  "Marta",  "Sergio",  "Isabel", "Jorge",  "Cristina",   "Carlos",
    "Alba",    "Miguel", "Pilar",  "Diego",   "Raquel", "Andrés", "José María", "Valentina",
};
static const char *const es_family[] = {
    "García", "Rodríguez", "González", "Fernández", "López",  "Martínez",  "Sánchez",
    "Pérez",  "Gómez",     "Martín",   "Jiménez",   "Ruiz",   "Hernández", "Díaz",
    "Moreno", "Muñoz",     "Álvarez",  "Romero",    "Alonso", "Gutiérrez", "Navarro",
    "Torres", "Domínguez", "Vázquez",  "Ramos",     "Gil",    "Ramírez",   "Serrano",
    "Blanco", "Molina",    "Castro",   "Ortega",
};
static const char *const es_airports[] = {"MAD", "MAD", "MAD", "MAD", "BCN", "BCN",
                                          "BCN", "AGP", "VLC", "SVQ", "PMI", "BIO",
                                          "MEX", "MEX", "EZE", "BOG", "SCL", "LIM"};

static const char *const pt_given[] = {
    "João",     "Maria",    "Ana",     "Pedro",   "Lucas",    "Juliana",  "Gabriel", "Mariana",
    "Rafael",   "Fernanda", "Matheus", "Beatriz", "Gustavo",  "Camila",   "Felipe",  "Larissa",
    "Bruno",    "Letícia",  "Thiago",  "Amanda",  "Leonardo", "Patrícia", "Rodrigo", "Aline",
    "Vinícius", "Bianca",   "André",   "Luíza",   "Caio",     "Renata",   "Antônio", "Gabriela",
};
static const char *const pt_family[] = {
    "Silva",   "Santos",     "Oliveira", "Souza",     "Rodrigues", "Ferreira", "Alves",
    "Pereira", "Lima",       "Gomes",    "Costa",     "Ribeiro",   "Martins",  "Carvalho",
    "Almeida", "Lopes",      "Soares",   "Fernandes", "Vieira",    "Barbosa",  "Rocha",
    "Dias",    "Nascimento", "Andrade",  "Moreira",   "Nunes",     "Marques",  "Machado",
    "Mendes",  "Freitas",    "Araújo",   "Conceição",
};
static const char *const pt_airports[] = {"GRU", "GRU", "GRU", "GIG", "GIG", "BSB",
                                          "CNF", "SSA", "REC", "POA", "CWB", "FOR"};

static const char *const ja_given[] = {
    "翔太", "陽菜", "大翔", "結衣", "蓮",   "美咲", "健",   "花子", "拓海",   "さくら", "悠斗",
    "葵",   "大輔", "由美", "直樹", "恵子", "誠",   "明美", "浩",   "真由美", "健太",   "愛",
    "翼",   "優子", "隆",   "裕子", "亮",   "彩",   "和也", "美穂", "陽翔",   "凛",
};
static const char *const ja_family[] = {
    "佐藤", "鈴木",   "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田",
    "山田", "佐々木", "山口", "松本", "井上", "木村", "林",   "斎藤", "清水", "山崎", "森",
    "池田", "橋本",   "阿部", "石川", "山下", "中島", "石井", "小川", "前田", "岡田",
};
static const char *const ja_airports[] = {"HND", "HND", "HND", "NRT", "NRT",
                                          "KIX", "NGO", "FUK", "CTS", "OKA"};

static const char *const hans_given[] = {
    "伟",   "芳",   "娜",   "秀英", "敏",   "静",   "丽",   "强",   "磊",   "军",   "洋",
    "勇",   "艳",   "杰",   "娟",   "涛",   "明",   "超",   "秀兰", "霞",   "平",   "刚",
    "桂英", "建华", "志强", "晓东", "海燕", "欣怡", "子涵", "浩然", "雨桐", "梓萱",
};
static const char *const hans_family[] = {
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周",   "吴", "徐",
    "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗",   "梁", "宋",
    "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "欧阳", "邓",
};
static const char *const hans_airports[] = {"PEK", "PEK", "PKX", "PVG", "PVG", "SHA",
                                            "CAN", "SZX", "CTU", "HGH", "XIY", "WUH"};

static const char *const hant_given[] = {
    "志明", "怡君", "雅婷", "俊傑", "家豪", "淑芬", "美玲", "宗翰", "冠宇", "佳穎", "承恩",
    "欣妤", "建宏", "淑惠", "嘉欣", "偉倫", "詠琪", "國華", "麗華", "振宇", "子軒", "思穎",
    "家瑋", "雅琪", "柏翰", "宜庭", "文傑", "慧玲", "志偉", "曉雯", "詩涵", "凱文",
};
static const char *const hant_family[] = {
    "陳", "林", "黃", "張", "李", "王", "吳", "劉", "蔡",   "楊", "許",
    "鄭", "謝", "洪", "郭", "邱", "曾", "廖", "賴", "徐",   "周", "葉",
    "蘇", "莊", "呂", "江", "何", "蕭", "羅", "高", "歐陽", "鍾",
};
static const char *const hant_airports[] = {"TPE", "TPE", "TPE", "TPE", "HKG", "HKG",
                                            "HKG", "KHH", "TSA", "MFM", "RMQ"};

static const char *const ko_given[] = {
    "민준", "서연", "지훈", "서윤", "현우", "지우", "도윤", "하은", "예준", "민서", "시우",
    "지민", "주원", "수아", "하준", "지유", "준서", "채원", "건우", "지아", "영수", "영희",
    "성민", "은지", "동현", "혜진", "상훈", "미경", "정호", "수진", "재원", "유나",
};
static const char *const ko_family[] = {
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한",
    "오", "서", "신", "권", "황", "안", "송", "류", "홍", "전", "고",
};
static const char *const ko_airports[] = {"ICN", "ICN", "ICN", "ICN", "GMP", "PUS", "CJU"};

static const char *const ar_given[] = {
    "محمد",  "أحمد",    "علي",    "عمر",   "يوسف", "خالد", "إبراهيم", "حسن",
    "مصطفى", "عبدالله", "فاطمة",  "عائشة", "مريم", "نور",  "سارة",    "ليلى",
    "هدى",   "زينب",    "ياسمين", "رانيا", "كريم", "سلمى", "طارق",    "منى",
};
static const char *const ar_family[] = {
    "العلي",  "الحسن",   "الأحمد", "المصري", "الشمري",  "القحطاني", "العتيبي",   "الزهراني",
    "الخطيب", "حداد",    "منصور",  "سليمان", "الرفاعي", "النجار",   "عبدالرحمن", "الحربي",
    "السيد",  "الدوسري", "البدوي", "الكعبي", "الهاشمي", "الساعدي",  "المالكي",   "الفارس",
};
static const char *const ar_airports[] = {"DXB", "DXB", "CAI", "CAI", "RUH", "JED", "DOH",
                                          "AMM", "BEY", "CMN", "AUH", "KWI", "TUN", "ALG"};

const language_profile population_languages[] = {
    {"en", 28, NAME_GIVEN_FAMILY, LIST(en_given), LIST(en_family), LIST(en_airports)},
    {"it", 22, NAME_GIVEN_FAMILY, LIST(it_given), LIST(it_family), LIST(it_airports)},
    {"de", 9, NAME_GIVEN_FAMILY, LIST(de_given), LIST(de_family), LIST(de_airports)},
    {"fr", 8, NAME_GIVEN_FAMILY, LIST(fr_given), LIST(fr_family), LIST(fr_airports)},
    {"es", 8, NAME_GIVEN_FAMILY_FAMILY, LIST(es_given), LIST(es_family), LIST(es_airports)},
    {"ja", 5, NAME_FAMILY_GIVEN, LIST(ja_given), LIST(ja_family), LIST(ja_airports)},
    {"zh-Hans", 6, NAME_FAMILY_GIVEN_JOINED, LIST(hans_given), LIST(hans_family),
     LIST(hans_airports)},
    {"zh-Hant", 3, NAME_FAMILY_GIVEN_JOINED, LIST(hant_given), LIST(hant_family),
     LIST(hant_airports)},
    {"pt-BR", 5, NAME_GIVEN_FAMILY_FAMILY, LIST(pt_given), LIST(pt_family), LIST(pt_airports)},
    {"ko", 4, NAME_FAMILY_GIVEN_JOINED, LIST(ko_given), LIST(ko_family), LIST(ko_airports)},
    {"ar", 2, NAME_GIVEN_FAMILY, LIST(ar_given), LIST(ar_family), LIST(ar_airports)},
};

const unsigned population_language_count =
    (unsigned)(sizeof population_languages / sizeof population_languages[0]);

static const char *word(const word_list *l, rng *r)
{
    return l->words[rng_below(r, l->count)];
}

const language_profile *population_pick_language(rng *r)
{
    unsigned total = 0;
    for (unsigned i = 0; i < population_language_count; i++)
        total += population_languages[i].weight;
    uint64_t x = rng_below(r, total);
    for (unsigned i = 0; i < population_language_count; i++) {
        if (x < population_languages[i].weight)
            return &population_languages[i];
        x -= population_languages[i].weight;
    }
    return &population_languages[0];
}

size_t population_name(const language_profile *lp, rng *r, char *out, size_t cap)
{
    const char *given = word(&lp->given, r);
    const char *family = word(&lp->family, r);
    int n = 0;
    switch (lp->order) {
    case NAME_FAMILY_GIVEN:
        n = snprintf(out, cap, "%s %s", family, given);
        break;
    case NAME_FAMILY_GIVEN_JOINED:
        n = snprintf(out, cap, "%s%s", family, given);
        break;
    case NAME_GIVEN_FAMILY_FAMILY:
        if (rng_chance(r, 0.6)) {
            const char *second = word(&lp->family, r);
            while (second == family) /* lists have no duplicates; redraw */
                second = word(&lp->family, r);
            n = snprintf(out, cap, "%s %s %s", given, family, second);
            break;
        }
        /* the others carry one family name */
        /* fall through */
    case NAME_GIVEN_FAMILY: {
        /* Extracts carry a few names in other shapes: "Family, Given" from
         * legacy systems, and nicknames in quotes. Arabic script has no
         * such habit in the source systems. */
        double x = rng_double(r);
        bool latin = strcmp(lp->tag, "ar") != 0;
        if (latin && x < 0.01)
            n = snprintf(out, cap, "%s, %s", family, given);
        else if (latin && x < 0.013)
            n = snprintf(out, cap, "%s \"%s\" %s", given, word(&lp->given, r), family);
        else
            n = snprintf(out, cap, "%s %s", given, family);
        break;
    }
    }
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap)
        n = cap ? (int)cap - 1 : 0;
    return (size_t)n;
}

const char *population_airport(const language_profile *lp, rng *r)
{
    if (rng_chance(r, 0.08)) {
        const language_profile *other =
            &population_languages[rng_below(r, population_language_count)];
        return word(&other->airports, r);
    }
    return word(&lp->airports, r);
}
