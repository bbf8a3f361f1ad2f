"""Writes service/demo/data/*.json: the three named synthetic demo patients (run from the repo root)."""

import json

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
CS_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CS_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSCAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def day(n):
    return f"@day{n:+d}" if n else "@day+0"


class P:
    def __init__(s, pid):
        s.pid = pid
        s.entries = []
        s.n = 0

    def add(s, r):
        s.entries.append({"fullUrl": f"urn:hcc-cds-demo:{r['resourceType']}/{r['id']}", "resource": r})
        return r

    def nid(s, kind):
        s.n += 1
        return f"{s.pid}-{kind}-{s.n}"

    def subj(s):
        return {"reference": f"Patient/{s.pid}"}

    def cond(s, system, code, display, onset, severity=None, clinical="active"):
        r = {
            "resourceType": "Condition",
            "id": s.nid("cond"),
            "clinicalStatus": {"coding": [{"system": CS_CLIN, "code": clinical}]},
            "verificationStatus": {"coding": [{"system": CS_VER, "code": "confirmed"}]},
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "subject": s.subj(),
            "onsetDateTime": day(onset),
            "recordedDate": day(onset),
        }
        if severity:
            r["severity"] = {
                "coding": [
                    {
                        "system": SCT,
                        "code": {"mild": "255604002", "moderate": "6736007", "severe": "24484000"}[severity],
                        "display": severity.capitalize(),
                    }
                ]
            }
        return s.add(r)

    def tace(s, when, system=SCT, code="441525007", status="completed"):
        r = {
            "resourceType": "Procedure",
            "id": s.nid("tace"),
            "status": status,
            "code": {
                "coding": [
                    {"system": system, "code": code, "display": "Transarterial chemoembolization of liver tumour"}
                ],
                "text": "TACE",
            },
            "subject": s.subj(),
            "performedDateTime": day(when),
        }
        return s.add(r)

    def lab(s, code, display, value, unit, when, ucum=True):
        q = {"value": value}
        if unit:
            q.update({"unit": unit})
        if unit and ucum:
            q.update({"system": UCUM, "code": unit})
        return s.add(
            {
                "resourceType": "Observation",
                "id": s.nid("lab"),
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": s.subj(),
                "effectiveDateTime": day(when),
                "valueQuantity": q,
            }
        )

    def score(s, code, display, value, when):
        return s.add(
            {
                "resourceType": "Observation",
                "id": s.nid("ps"),
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "survey"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "subject": s.subj(),
                "effectiveDateTime": day(when),
                "valueInteger": value,
            }
        )

    def lesion(s, name, site=("10200004", "Liver structure")):
        return s.add(
            {
                "resourceType": "BodyStructure",
                "id": f"{s.pid}-lesion-{name}",
                "identifier": [{"system": "urn:hcc-cds-demo:lesion", "value": f"{s.pid}-{name}"}],
                "morphology": {"coding": [{"system": SCT, "code": "1240414004", "display": "Malignant neoplasm"}]},
                "location": {"coding": [{"system": SCT, "code": site[0], "display": site[1]}]},
                "patient": s.subj(),
            }
        )

    def size(s, lesion, mm, when):
        return s.add(
            {
                "resourceType": "Observation",
                "id": s.nid("size"),
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "imaging"}]}],
                "code": {"coding": [{"system": LOINC, "code": "21889-1", "display": "Size Tumor"}]},
                "subject": s.subj(),
                "focus": [{"reference": f"BodyStructure/{s.pid}-lesion-{lesion}"}],
                "effectiveDateTime": day(when),
                "method": {"coding": [{"system": SCT, "code": "77477000", "display": "Computerized axial tomography"}]},
                "component": [
                    {
                        "code": {
                            "coding": [
                                {"system": LOINC, "code": "33728-7", "display": "Size.maximum dimension in Tumor"}
                            ]
                        },
                        "valueQuantity": {"value": mm, "unit": "mm", "system": UCUM, "code": "mm"},
                    }
                ],
            }
        )

    def patient(s, gender, birth, name):
        return s.add(
            {
                "resourceType": "Patient",
                "id": s.pid,
                "identifier": [{"system": "urn:hcc-cds-demo:mrn", "value": s.pid.upper()}],
                "name": [{"family": "Demo", "given": [name]}],
                "gender": gender,
                "birthDate": birth,
            }
        )

    def bundle(s):
        return {"resourceType": "Bundle", "id": f"{s.pid}-bundle", "type": "collection", "entry": s.entries}


def std_labs(p, when, bili, alb, inr, plt=160, unit_bili="mg/dL", unit_alb="g/dL"):
    p.lab("1975-2" if unit_bili == "mg/dL" else "14631-6", "Bilirubin.total", bili, unit_bili, when)
    p.lab("1751-7", "Albumin", alb, unit_alb, when)
    p.lab("6301-6", "INR", inr, "{INR}", when)
    p.lab("777-3", "Platelets", plt, "10*3/uL", when)
    p.lab("2160-0", "Creatinine", 0.9, "mg/dL", when)


# --- demo-eligible
p = P("demo-eligible")
p.patient("male", "1960-03-14", "Eligible")
p.cond(SCT, "109841003", "Liver cell carcinoma", -900)
p.cond(ICD, "B18.1", "Chronic viral hepatitis B without delta-agent", -3000)
p.lesion("a")
p.lesion("b")
std_labs(p, -410, 0.9, 4.0, 1.0)
p.score("89247-1", "ECOG Performance Status score", 0, -410)
# TACE 1-3 without response (SD, SD), then PD 40 days after the third; a fourth TACE did not help
for d, (a, b) in [(-405, (40, 25)), (-330, (34, 22)), (-240, (30, 20)), (-170, (36, 25)), (-100, (45, 25))]:
    p.size("a", a, d)
    p.size("b", b, d)
for d in (-400, -300, -210, -150):
    p.tace(d)
# AFP higher after each of two consecutive sessions (JSH-LCSGJ 2014, criterion 2)
for d, v in [(-405, 220), (-330, 260), (-305, 250), (-240, 300), (-100, 310), (-5, 420)]:
    p.lab("1834-1", "Alpha-1-Fetoprotein", v, "ng/mL", d)
std_labs(p, -5, 1.1, 3.8, 1.1)
p.score("89247-1", "ECOG Performance Status score", 1, -10)
p.score("89243-0", "Karnofsky Performance Status score", 80, -10)
eligible = p.bundle()
# --- demo-ineligible
p = P("demo-ineligible")
p.patient("female", "1955-07-02", "Ineligible")
p.cond(SCT, "109841003", "Liver cell carcinoma", -1200)
p.cond(ICD, "B18.1", "Chronic viral hepatitis B without delta-agent", -5000)
p.cond(SCT, "389026000", "Ascites", -40, severity="moderate")
p.lesion("a")
p.lesion("b")
p.lesion("c")
std_labs(p, -505, 1.4, 3.6, 1.2)
p.score("89247-1", "ECOG Performance Status score", 0, -505)
for d, (a, b, c) in [(-502, (35, 22, 15)), (-420, (28, 18, 12)), (-250, (40, 26, 18))]:
    p.size("a", a, d)
    p.size("b", b, d)
    p.size("c", c, d)
for d in (-500, -400, -320):
    p.tace(d)
std_labs(p, -3, 58, 27, 1.9, unit_bili="umol/L", unit_alb="g/L")
p.score("89247-1", "ECOG Performance Status score", 2, -20)
ineligible = p.bundle()
# --- demo-missing-data
p = P("demo-missing-data")
p.patient("male", "1968-11-30", "Missing")
p.cond(SCT, "109841003", "Liver cell carcinoma", -200)
p.lesion("a")
p.lesion("b")
for d, (a, b) in [(-130, (32, 18)), (-20, (40, 22))]:
    p.size("a", a, d)
    p.size("b", b, d)
# two sessions coded only by CPT 37243 (also bland or Y-90 embolization): TACE resistance at most unknown
p.tace(-120, system=CPT, code="37243")
p.tace(-60, system=CPT, code="37243")
p.lab("1975-2", "Bilirubin.total", 1.3, "mg/dL", -60)
p.lab("1751-7", "Albumin", 3.9, None, -4)
missing = p.bundle()
for name, b in [("demo-eligible", eligible), ("demo-ineligible", ineligible), ("demo-missing-data", missing)]:
    json.dump(b, open(f"service/demo/data/{name}.json", "w"), indent=1)
print("ok")
