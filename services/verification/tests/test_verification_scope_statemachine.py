"""Property: a staff member sees a case if and only if it is in their scope *now*.

A hypothesis state machine creates cases, reassigns them, moves staff between units, changes
what supervisors oversee, escalates reports about inspectorates, disables and re-enables
accounts, and after every step compares what the database lets each account reach
(``reach.visible_case_ids`` and ``cases.get_case``) with an oracle written from docs/domain.md's
rules over a plain-Python model of the same facts.
"""
import uuid

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from verification import assignment, auth, cases, directory, reach
from verification.errors import NotEligible, NotFound
from verification.models import Base, Case, Staff

# (code, parent, inspectorate)
UNITS = [("itjen", None, True), ("dit-a", "itjen", False), ("dit-a1", "dit-a", False), ("dit-b", "itjen", False),
         ("irjen", None, True), ("kpu", "irjen", False)]
PARENT = {c: p for c, p, _ in UNITS}
INSPECTORATE = {c for c, _, i in UNITS if i}
CODES = [c for c, _, _ in UNITS]
PASSWORDS = auth.Passwords(auth.HashingCost(time_cost=1, memory_kib=8, parallelism=1))


def ancestors(code):
    out = []
    while code is not None:
        out.append(code)
        code = PARENT[code]
    return out


def below(root):
    return {c for c in CODES if root in ancestors(c)}


class ScopeMachine(RuleBasedStateMachine):
    cases = Bundle("cases")
    @initialize()
    def directory(self):
        engine = create_engine("sqlite://")

        @event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        Base.metadata.create_all(engine)
        self.engine = engine
        self.session = Session(engine)
        for code, parent, inspectorate in UNITS:
            directory.add_unit(self.session, code, code, parent, inspectorate)
        self.staff = {}  # id -> dict(role, home, active, pool, oversees)
        specs = [("ins1", "itjen", "inspector", False), ("ins2", "dit-a", "inspector", False),
                 ("ins3", "irjen", "inspector", False), ("sup1", "itjen", "supervisor", False),
                 ("sup2", "dit-a", "supervisor", False), ("esc1", "irjen", "supervisor", True),
                 ("adm", "itjen", "admin", False)]
        for username, home, role, pool in specs:
            made = directory.add_staff(self.session, PASSWORDS, username, f"{username}@example.org", home, role,
                                    escalation_pool=pool)
            self.staff[made["staff_id"]] = dict(role=role, home=home, active=True, pool=pool,
                                                oversees={home} if role == "supervisor" else set())
        self.cases = {}  # id -> dict(unit, escalated, assignee)
        self.session.flush()

    def person(self, index: int) -> str:
        ids = sorted(self.staff)
        return ids[index % len(ids)]

    def teardown(self):
        if hasattr(self, "session"):
            self.session.close()
            self.engine.dispose()

    # ------------------------------------------------------------------ the oracle

    def in_scope(self, staff_id, case_id) -> bool:
        s, c = self.staff[staff_id], self.cases[case_id]
        if not s["active"]:
            return False
        if c["assignee"] == staff_id and s["role"] in ("inspector", "supervisor"):
            return True
        if s["role"] != "supervisor":
            return False
        if c["escalated"]:
            return s["pool"] and c["unit"] not in ancestors(s["home"])
        reach = set().union(*(below(u) for u in s["oversees"])) if s["oversees"] else set()
        return c["unit"] in reach and c["unit"] != s["home"]

    # ------------------------------------------------------------------ rules

    @rule(target=cases, unit=st.sampled_from(CODES))
    def report(self, unit):
        case = cases.open_case(self.session, {"event_id": str(uuid.uuid4()), "report_id": str(uuid.uuid4()),
                                               "unit": unit, "category": "fraud"})
        self.cases[case.case_id] = dict(unit=unit, escalated=unit in INSPECTORATE, assignee=case.assignee_id)
        assert case.escalated == (unit in INSPECTORATE)
        return case.case_id

    @rule(case=cases, target_index=st.integers(0, 6), by_index=st.integers(0, 6))
    def reassign(self, case, target_index, by_index):
        ids = sorted(self.staff)
        by, target = ids[by_index % len(ids)], ids[target_index % len(ids)]
        actor = self.session.get(Staff, by)
        try:
            assignment.reassign(self.session, actor, case, self.session.get(Staff, target).username, [])
        except (NotFound, NotEligible):
            return
        except Exception as exc:  # Forbidden (not a supervisor), InvalidInput (inactive target)
            assert type(exc).__name__ in ("Forbidden", "InvalidInput")
            return
        assert self.in_scope(by, case) and self.staff[by]["role"] == "supervisor"
        self.cases[case]["assignee"] = target

    @rule(index=st.integers(0, 6), unit=st.sampled_from(CODES))
    def move(self, index, unit):
        who = self.person(index)
        directory.move_staff(self.session, who, unit)
        self.staff[who]["home"] = unit

    @rule(index=st.integers(0, 6), units=st.sets(st.sampled_from(CODES), max_size=2))
    def oversee(self, index, units):
        who = self.person(index)
        if self.staff[who]["role"] != "supervisor":
            return
        directory.set_supervision(self.session, who, sorted(units))
        self.staff[who]["oversees"] = set(units)

    @rule(index=st.integers(0, 6), active=st.booleans())
    def set_active(self, index, active):
        who = self.person(index)
        directory.set_staff_active(self.session, who, active)
        self.staff[who]["active"] = active

    # ------------------------------------------------------------------ the invariant

    @invariant()
    def visible_iff_in_scope_now(self):
        if not getattr(self, "cases", None):
            return
        self.session.flush()
        for staff_id in self.staff:
            viewer = self.session.get(Staff, staff_id)
            expected = {c for c in self.cases if self.in_scope(staff_id, c)}
            assert reach.visible_case_ids(self.session, viewer) == expected, (viewer.username, viewer.role)
            listed = {c.case_id for c in cases.list_cases(self.session, viewer)}
            assert listed == expected
            for case_id in self.cases:
                try:
                    cases.get_case(self.session, viewer, case_id)
                    seen = True
                except NotFound:
                    seen = False
                assert seen == (case_id in expected)
        assert self.session.query(Case).count() == len(self.cases)


ScopeMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_visible_iff_in_scope_now = ScopeMachine.TestCase
