"""A decided expectation: its verdict with the numbers behind it, the interval that decided it, its power where its
rule has one, and the verdicts of the subsets that leave one seed out, from which its fragile flag follows."""
from dataclasses import dataclass, field

from ..deciding import DECIDED, WITHIN, Decision
from ..text import int_list


@dataclass
class Outcome:
    name: str  # the rule's name in rules.RULES
    claim: str  # the original's expectation, in its words
    rule: str  # how it is decided here
    verdict: str  # holds | does not hold | not shown | cannot be evaluated
    evidence: str  # the numbers behind the verdict, ending with the optimizer steps the batch sizes took
    short: str  # the key numbers in one line, for the report's key findings
    alt: str = ""  # the threshold rule only: the verdict under the other definition of 'performs poorly'
    decision: Decision = None  # the interval bound or p-value that decided the verdict; None when none was tested
    power: dict = None  # what the runs could detect (threshold.power, where that rule is not shown); else None
    subsets: dict = field(default_factory=dict)  # {seed: the verdict without its runs}; {} without per-seed runs

    def robustness(self) -> str:
        """A decided verdict's leave-one-seed-out line, e.g. 'holds in 1 of 5 subsets that leave one seed out (without
        seed 1; not shown without seed 0, 2, 3 or 4)'; '' for an undecided verdict or without per-seed runs."""
        if self.verdict not in DECIDED or not self.subsets:
            return ""
        by = {}
        for seed, v in sorted(self.subsets.items()):
            by.setdefault(v, []).append(seed)
        same = by.pop(self.verdict, [])
        text = f"{self.verdict} in {len(same)} of {len(self.subsets)} subsets that leave one seed out"
        return text + (" (" + "; ".join(([f"without seed {int_list(same)}"] if same else [])
                                        + [f"{v} without seed {int_list(seeds)}" for v, seeds in by.items()]) + ")"
                       if by else "")

    @property
    def fragile(self) -> bool:
        """The rule: a verdict is fragile when its deciding bound lies within FRAGILE points of its tolerance (a rerun
        on another CPU type moves bounds that far), or, where it is decided, when a subset that leaves one seed out
        gives another verdict."""
        return bool(self.decision and self.decision.fragile) or (
            self.verdict in DECIDED and any(v != self.verdict for v in self.subsets.values()))

    def fragile_why(self) -> str:
        """Why the verdict is fragile, in words; '' when it is not."""
        if not self.fragile:
            return ""
        why = [f"it rests on {self.decision.text}, {WITHIN}, so a rerun on another CPU type can flip it"
               ] if self.decision and self.decision.fragile else []
        if any(v != self.verdict for v in self.subsets.values()):
            why.append("a subset of its runs that leaves one seed out gives another verdict")
        return "; ".join(why)

    def standing(self) -> str:
        """The leave-one-seed-out line and the fragile flag, for a verdict's line; '' where neither applies."""
        line = f" It {self.robustness()}." if self.robustness() else ""
        return line + (f" **Fragile**: {self.fragile_why()}." if self.fragile else "")


def verb(verdict: str) -> str:
    """A verdict after 'it': 'holds', 'does not hold', 'is not shown', 'cannot be evaluated'."""
    return "is not shown" if verdict == "not shown" else verdict
