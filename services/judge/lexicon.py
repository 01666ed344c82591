"""The concepts the offline judge recognises, as patterns over normalised text.

Each concept is written as the ideas a reviewer can use for it, not as its rubric name:
"the planner needs row counts" is cost-based optimisation, "keep recent answers in
memory" is caching, "the way back" is an exit plan. Patterns run on the output of
:func:`services.judge.language.normalise` (lower case, contractions expanded, hyphens as
spaces). Cue patterns (deficiency, trade-off, proposal, dismissal) decide whether a
sentence that *mentions* a concept also *makes the point*.
"""

from __future__ import annotations

import re
from typing import Final


def rx(*alternatives: str) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of ``alternatives`` on word boundaries."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")


# --------------------------------------------------------------------------- issues
ISSUE_TOPIC: Final[dict[str, re.Pattern[str]]] = {
    "issue.no_cost_projection": rx(
        r"costs?", r"costing", r"bill(?:s|ed|ing)?", r"invoices?", r"spend(?:ing)?", r"spent",
        r"pric(?:e|es|ing|ed)", r"budget\w*", r"credits?", r"money", r"pay(?:s|ing)?", r"paid",
        r"charg(?:e|es|ed|ing)", r"meter(?:s|ed)?", r"consumption", r"expensive", r"dollars", r"financ\w*",
    ),
    "issue.no_exit_plan": rx(
        r"exit", r"way (?:back|out)", r"path back", r"door back", r"the door", r"way to leave", r"get(?:ting)? out",
        r"get (?:our data|the data|the marts|the tables|it|them) (?:back|out)", r"(?:move|migrat\w*|go|going) back",
        r"(?:mov|migrat|switch|walk|get|com)\w* (?:off|away from|out of)(?= [^.;]{0,20}(?:vendor|warehouse|platform|service|contract|it\b))",
        r"return to (?:the )?(?:lakehouse|lake|iceberg)", r"leav(?:e|ing)", r"lock ?in", r"one way door",
        r"reversib\w*", r"rollback", r"roll back", r"undo", r"disaster recovery", r"dr", r"recovery",
        r"(?:vendor|service) (?:outage|fails|failure|has an outage)", r"outage", r"back out", r"price (?:doubles|rises|changes)",
        r"prices? change", r"(?:up for )?renewal", r"proprietary (?:format|store)", r"vendor relationship",
        r"(?:vendor|service|warehouse|provider) (?:goes|is|went|were|was) down", r"(?:want|need|get|take) (?:our |the )?(?:data|tables|marts) back",
    ),
    "issue.no_ml_story": rx(
        r"ml", r"machine learning", r"(?:model )?training", r"train\w* (?:jobs?|pipelines?|runs?|models?|workloads?|code)",
        r"train(?:ing)? models?", r"data scien\w*", r"notebooks?", r"jupyter\w*", r"feature (?:engineering|pipelines?|store)",
        r"year 4", r"y4",
    ),
    "issue.federation_loss": rx(
        r"federat\w*", r"single query", r"one query over", r"in one query", r"one sql endpoint", r"in place",
        r"across sources", r"(?:several|many|multiple) sources", r"cross source",
        r"(?:join|joins|joining|combine|combines|query|queries|read|reads|federates)(?= [^.;]{0,30}(?:postgres|operational|orders database))",
        r"(?:postgres|operational database|orders database) (?:and|with) (?:the )?(?:iceberg|lake)",
        r"(?:iceberg|lake) (?:and|with) (?:the )?(?:postgres|operational)",
    ),
}

#: What makes a cost sentence say "not projected" or "grows with usage".
COST_CUE = rx(
    r"no (?:cost |budget )?(?:projection|estimate|model|forecast|figure|number|budget|section|ceiling)",
    r"(?:not|never) (?:even )?(?:been )?(?:estimated|projected|modell?ed|mentioned|addressed|an estimate)",
    r"nobody has estimated", r"unestimated", r"unmodell?ed", r"missing", r"is missing",
    r"(?:does not|did not|do not|never) (?:even )?(?:estimates?|projects?|says?|mentions?|includes?|gives?|contains?|shows?|tells?|compares?)",
    r"what (?:the warehouse|it|this|that) (?:will|would) cost",
    r"needs? (?:a|one) (?:figure|estimate|number|projection|forecast)", r"need a (?:forecast|projection|figure)",
    r"(?:would like|want) to see", r"what (?:will|would|does) (?:this|it|the bill|the invoice|the monthly bill)",
    r"how much", r"what (?:is|does) the (?:projected|monthly)", r"says nothing", r"silent", r"nothing in",
    r"please add", r"add a projection", r"without (?:a|any) (?:cost|estimate)", r"should (?:project|show|include)",
    r"per (?:query|credit|second|compute second)", r"by the second", r"scal\w* with", r"grow\w* (?:with|as)",
    r"ris\w* with", r"climb\w* with", r"follow\w* (?:adoption|usage)", r"spend follows",
    r"more (?:users|queries|popular|successful|dashboards|analysts)", r"every (?:query|refresh|dashboard|analyst|new)",
    r"each (?:new )?(?:dashboard|query|refresh)", r"no natural ceiling", r"as (?:it gets|usage|adoption|more)",
    r"with (?:usage|adoption|every)", r"usage (?:based|priced|billed)", r"consumption (?:based|priced|pricing)",
    r"turns success into spend", r"does the bill double", r"bill double", r"doubles?", r"not a (?:property|detail)",
    r"(?:unknown|unpredictabl\w*)", r"nobody has", r"no one has", r"(?:the )?rfc needs",
)

#: A sentence that says the design lacks something, or asks for it.
DEFICIENCY = rx(
    r"no", r"not", r"never", r"without", r"nothing", r"nobody", r"none", r"missing", r"lacks?", r"lacking",
    r"absent", r"silent", r"ignor\w*", r"overlook\w*", r"omit\w*", r"unclear", r"unaddressed", r"undocumented",
    r"leaves? (?:them|it|that|this|those|these) out", r"leaves out", r"left out", r"one way door", r"hollow out",
    r"(?:needs?|need to|should|must|please) (?:an?|one|to|writing|say|describe|explain|add|include|state|show|cover|address|attach)",
    r"needs writing down", r"(?:would|will) (?:like|want|expect) to see", r"i would expect", r"expect(?:ed)? (?:a|an|to see)",
    r"what (?:is|does|happens|do|would|will|about|then)", r"how (?:would|do|will|can|does|did|much)",
    r"which queries", r"why", r"whether", r"becomes a (?:project|migration)", r"would be a (?:migration|project)",
    r"(?:is|be) a (?:migration )?project of its own", r"one way",
)

#: Losing something, for federation.
LOSS = rx(
    r"los(?:e|es|ing|t)", r"loss", r"give(?:s)? up", r"giving up", r"throw\w* away", r"sacrific\w*", r"forfeit\w*", r"gone", r"go(?:es)? away", r"disappear\w*",
    r"remov\w*", r"drop(?:s|ped)?", r"break", r"abandon\w*", r"take (?:that|it) away", r"trading", r"no longer",
    r"what happens", r"state whether", r"would (?:break|lose)", r"only engine",
)

#: Dismissal: the reviewer says the issue does not exist or does not matter.
ISSUE_DISMISSED = rx(
    r"not (?:really |honestly )?(?:worried|concerned|a (?:concern|problem|worry|big deal)|an issue|needed|relevant|necessary|required|something)",
    r"(?:is|are) (?:well )?(?:covered|handled|addressed|thorough|out of scope)", r"out of scope", r"it is fine that",
    r"(?:will|would) not be affected", r"no need", r"(?:it )?(?:includes|has|have) a (?:clear |thorough |detailed )?(?:cost|dr|exit|plan|projection)",
    r"a clear dr plan", r"already (?:approved|covered|has|included)", r"do not think (?:statistics|stats|compaction|cost|it)",
    r"(?:is|are) not the (?:problem|issue|cause)", r"obviously the bottleneck", r"proves it", r"simply big",
    r"keeps backups", r"exports to parquet", r"startup discount", r"not convinced",
    r"(?:do|does|did) not see [^.;]{0,25} as (?:relevant|a problem|an issue|necessary|needed|a concern)",
    r"(?:is|are) not (?:necessary|needed|required) for",
)
#: Concepts named only to be waved away ("Cost, exit, ML - none of those worry me"): no issue, no pattern.
CONCEPTS_DISMISSED = rx(
    r"none of (?:those|these|them|that|this) (?:\w+ )?(?:worr\w*|matters?|concerns?|bothers?|appl\w*)",
    r"(?:do|does|did) not (?:worry|concern|bother) (?:me|us)",
)

SLOW_TOPIC = rx(
    r"slow\w*", r"latenc\w*", r"performance", r"speed", r"time ?outs?", r"timing out", r"bottleneck", r"crawls?",
    r"(?:40|90|\d+) (?:s|seconds|second)", r"minute", r"engine", r"trino", r"fast\w*", r"the join",
)
SLOW_CAUSE = rx(
    r"statistic(?:s|al)?", r"stats", r"(?<!explain )analy[sz]e", r"row (?:counts?|estimates?)", r"value (?:ranges|distributions)",
    r"recount\w*", r"compact\w*", r"uncompacted", r"small files", r"tiny files", r"file counts?",
    r"(?:number|count|thousands|tens of thousands) of (?:small )?files", r"merg\w* (?:small )?files", r"file merging",
    r"dynamic filter\w*", r"join (?:order|distribution|reordering)", r"distribution choice", r"broadcast\w*",
    r"query plan", r"the plan", r"explain analy[sz]e", r"(?:an|the) explain", r"profil\w*", r"planner", r"optimi[sz]\w*",
    r"(?:data|file|table|storage|physical) layout", r"laid out", r"shuffl\w*", r"reading files", r"small ones", r"little files",
    r"(?:told|knows|know) (?:about )?(?:the )?(?:table )?sizes",
)
SLOW_DIAG = rx(
    r"not (?:yet )?(?:been )?(?:shown|proven|established|diagnosed|measured|profiled|looked at)", r"unproven",
    r"no (?:evidence|profile|query profile|diagnosis)", r"nobody has", r"no one has", r"yet shown",
    r"(?:have|has) (?:we|anyone|someone|you) (?:looked|established|checked|profiled|run|pulled)",
    r"did (?:you|anyone|we) (?:run|check|count|look)", r"assum\w*", r"attribut\w*", r"jump\w* from", r"skips? a step",
    r"before (?:we |you )?(?:blame|blaming|conclude|judg\w*|go further|swap\w*)", r"symptom", r"root cause", r"culprit",
    r"last suspect", r"usual suspects", r"suspects?", r"could (?:just as well )?be", r"may be", r"might be", r"maybe",
    r"would (?:all )?(?:look|produce|explain)", r"same symptom", r"look the same", r"inference", r"a guess", r"is it really",
    r"actually (?:the bottleneck|at fault)", r"as opposed to", r"follow the data", r"would not fix", r"not an? (?:engine|trino) problem",
    r"not (?:an )?engine problem", r"trino is not slow", r"is not slow", r"why (?:the join|it|this join) is slow", r"do not know", r"can not tell",
    r"tell us", r"find out", r"(?:is|are) the (?:problem|bottleneck|issue)", r"at fault", r"blam\w*", r"whether",
    r"where the time goes", r"where (?:does|did) the time go", r"where the \d+ seconds go", r"dominated by", r"would explain",
    r"depends on", r"(?:that )?alone can explain", r"nothing to do with which", r"your tables are", r"fix (?:the table|is on our side)",
    r"will crawl", r"the join crawls", r"bad guess", r"attach the plan", r"see the explain", r"pull the query plan",
    r"either way", r"plausible", r"(?:may|might|could) (?:well |just as well |also |equally )?(?:come|stem|result) from",
    r"rather than (?:from )?(?:the engine|trino)", r"do (?:we|you|they) (?:actually |really )?know", r"(?:comes?|came) from trino", r"(?:have|has) not (?:been )?(?:looked|refreshed|diagnosed)", r"not diagnosed",
    r"nothing (?:in the (?:rfc|doc|design|proposal) )?shows", r"any engine", r"(?:is|was) (?:the engine|trino|it) really",
    r"really the (?:bottleneck|problem|culprit)", r"before changing vendors", r"re ?measure",
)
SLOW_DIAG_STRONG = rx(
    r"not (?:yet )?(?:been )?(?:shown|proven|established|diagnosed)", r"unproven", r"nobody has", r"no one has",
    r"assum\w*", r"jump\w* from", r"skips? a step", r"before (?:we |you )?(?:blame|blaming|conclude)", r"symptom",
    r"culprit", r"last suspect", r"is it really", r"actually (?:the bottleneck|at fault)", r"follow the data",
    r"not an? (?:engine|trino) problem", r"is not slow", r"do not know", r"can not tell", r"at fault", r"not diagnosed",
    r"(?:have|has) (?:we|anyone) established", r"where (?:does|did) the time go", r"where the \d+ seconds go",
    r"why (?:the join|it|this join) is slow", r"the engine is the", r"inference", r"any engine",
    r"do (?:we|you) (?:actually |really )?know (?:that |whether |if )?(?:the )?(?:slowness|latency|time)",
    r"(?:is|was) (?:the engine|trino|it) really", r"really the (?:bottleneck|problem|culprit)", r"nothing (?:in the (?:rfc|doc) )?shows",
)

# ----------------------------------------------------------------------- alternatives
ALT_TOPIC: Final[dict[str, re.Pattern[str]]] = {
    "alternative.tune_trino": rx(
        r"tun(?:e|es|ed|ing)(?: trino| the engine| it)?", r"trino tuning", r"(?<!explain )analy[sz]e",
        r"(?:collect|refresh|recollect|update|gather)\w* (?:table |column )?(?:statistics|stats)", r"statistics", r"stats",
        r"dynamic filter\w*", r"join (?:distribution|reordering|order)", r"worker (?:sizing|memory|count)s?",
        r"(?:partitioned|broadcast|distributed) (?:hash )?joins?", r"(?:more|bigger|larger) (?:workers|worker nodes|memory)",
    ),
    "alternative.caching": rx(
        r"cach(?:e|es|ed|ing)", r"(?:remember|keep|hold|store|save)\w*(?: on to)? (?:\w+ ){0,2}(?:answers|results)",
        r"in memory for",
    ),
    "alternative.partitioning": rx(
        r"partition\w*(?! (?:hash )?joins?)", r"bucket\w*", r"sort(?:ed|ing)? by", r"compact\w*", r"file layout", r"rewrit\w* (?:the )?(?:table|files)",
        r"merg\w* small files", r"cluster\w* by", r"z ?order\w*",
    ),
    "alternative.materialized_views": rx(
        r"materiali[sz]ed (?:views?|rollups?)", r"mvs?", r"pre ?(?:comput|aggregat|calculat)\w*", r"summary tables?",
        r"aggregate tables?", r"rollup tables?",
    ),
    "alternative.move_specific_workloads": rx(
        r"(?:move|moving|put|migrate|pilot|piloting|trial|send)\w*(?=\b[^.;]{0,40}\b(?:only|just|alone|single)\b)",
        r"only (?:that|those|the|one|specific|a few)\b(?=[^.;]{0,25}(?:workloads?|dashboards?|marts?))",
        r"(?:pilot|trial) (?:the warehouse )?(?:for|on|of) (?:the |that |those |one )", r"specific workloads?", r"hybrid",
    ),
}

GENERIC_TRADE = rx(
    r"but", r"though", r"although", r"however", r"at the (?:cost|price|expense) of",
    r"the (?:price|catch|downside|cost|trade off|tradeoff) (?:is|being|here)", r"in exchange", r"trad\w* (?:off )?(?:some |a little )?\w+ (?:and \w+ )?for",
    r"downside", r"drawback", r"caveat", r"risk", r"the catch", r"we would lose", r"we would pay", r"you give up", r"give up",
)
#: A trade-off stated outright (a price paid), which needs no further words to be one.
STATED_TRADE = rx(
    r"costs? (?:a bit |a little |slightly |somewhat |some )?more", r"(?:more|extra) (?:hardware|nodes|machines|storage|compute|work)",
    r"accept\w* that", r"(?:can|could|would have to) live with", r"(?:as long as|provided|if) we (?:accept|tolerate|can live with)",
)
ALT_TRADE: Final[dict[str, re.Pattern[str]]] = {
    "alternative.tune_trino": rx(
        r"only helps? if", r"(?:will|would|may|might) not (?:help|fix|be enough)", r"not (?:help|fix) (?:everything|if)",
        r"may not be enough", r"changes nothing", r"nothing if", r"if the plan is (?:already )?(?:good|fine|bad)",
        r"a day of work", r"an afternoon", r"costs? (?:almost )?nothing", r"cheap\w*", r"a day", r"not enough on its own",
        r"only (?:works|helps)", r"if (?:c1|the plan|the files)", r"genuinely too (?:big|large)",
    ),
    "alternative.caching": rx(
        r"stale\w*", r"old(?:er)?", r"minutes? old", r"few minutes", r"ttl", r"fresh\w*", r"out of date", r"invalidat\w*",
        r"ad hoc", r"nothing for", r"slightly", r"acceptable",
    ),
    "alternative.partitioning": rx(
        r"rewrit\w*", r"maintenance", r"maintain\w*", r"job (?:we|to|that|someone)", r"to operate", r"someone has to own",
        r"keep (?:compaction|it) running", r"ongoing", r"new writes must", r"respect the bucketing", r"one off", r"costs? a",
    ),
    "alternative.materialized_views": rx(
        r"fresh\w*", r"stale\w*", r"lag\w*", r"behind", r"old(?:er)?", r"hour old", r"refresh (?:interval|behind)",
        r"one refresh", r"last refresh", r"not real ?time", r"real time", r"up to the minute", r"storage", r"maintain\w*",
        r"one more model", r"only updates", r"on a schedule", r"up to an hour", r"give up",
    ),
    "alternative.move_specific_workloads": rx(
        r"two (?:engines|systems)", r"sync job", r"copy job", r"while it runs", r"for a while", r"operational cost",
        r"bounded", r"spending cap", r"cost ceiling", r"hard spending", r"pay for two", r"running two", r"operate two",
        r"export job", r"for that month",
    ),
}

PROPOSAL = rx(
    r"(?:i|we) (?:would |could |might )?(?:suggest|propose|recommend)", r"suggest\w*", r"propose", r"my proposal", r"recommend\w*",
    r"we could", r"you could", r"could (?:try|add|use|also|you)", r"consider", r"(?:i|we) would (?:try|start|like|do|make|push|rather)",
    r"let us", r"try\w*", r"what i would", r"instead(?! of)", r"instead of (?:the warehouse|a warehouse|buying|moving|swapping)",
    r"(?:an|the other|one) option (?:is|would)", r"alternatives? (?:worth|i would|to)", r"start with",
    r"first (?:tune|try|run|compact|refresh|collect)", r"go tune", r"before buying", r"happy to", r"should we",
    r"a (?:smaller|narrower) (?:change|version|bet|alternative)", r"smaller bets", r"worth (?:a look|trying|comparing)",
    r"(?:you|we|it|rfc|exam|doc) should(?! not)", r"what you should do", r"maybe (?:also )?(?:double )?(?:check|look|consider|try|think|add|use)",
    r"go ahead", r"time ?box", r"pilot", r"spike", r"for (?:instance|example)", r"(?:cheapest|first|an?) experiment",
    r"(?:another|an|one|the other|a second|a third|other) (?:alternative|option) (?:is|would be|could be|worth)",
    r"as an alternative", r"(?:i|we) would (?!not\b)(?:also |rather |first )?(?:keep|add|use|give|put|go|build|move|fix|start|try|run|send|let|pilot|cache|partition|compact)",
    r"(?:cheaper|smaller) experiments?", r"(?:one|an|another|my|a (?:cheaper|simpler|smaller)) (?:idea|route|approach|path)",
    r"compare against", r"worth (?:exploring|testing|considering|measuring)", r"(?:would|could|might) (?:help|be enough|do the trick|go a long way)",
    r"(?:first|next|good|cheap|obvious) step (?:would be|is|could be|might be)", r"would be to (?!blame)",
    r"(?:should|must|has to|have to|needs? to) (?:be (?:\w+ed|moved|kept|run|done|made|set)|use|live|move|run|go)\b",
    r"why not (?:just |first |simply )?(?:try|move|use|add|put|cache|build|start|pilot|tune|keep|run|refresh|partition|compact|precompute|materiali[sz]e)",
    r"(?:i|we) would (?:also |rather |first |instead )?(?:precompute|materiali[sz]e|aggregate|refresh|collect|tune|bucket|sort|enable|measure|profile|switch|introduce|create)",
)
DEFICIENCY_SECTION = re.compile(
    r"(?:what is |what s |what are )?missing|\bgaps?\b|\bholes\b|not covered|blind spots|"
    r"what the (?:rfc|design|proposal) (?:misses|lacks|leaves out|does not)"
)
PROPOSAL_SECTION = re.compile(
    r"\b(?:alternatives?|options?|suggest\w*|instead|try(?: first)?|what i (?:would|d) (?:do|try)|"
    r"recommend\w*|bets|cheaper|experiments?|next steps?|what you should do|s\d|how to get there|"
    r"a smaller|a narrower|path forward)\b|^(?:my |the |a )?propos(?:al|ed)\b"
)
#: A request to the author to add something is a claim that it is missing ("Describe how we ...").
REQUESTS: Final[frozenset[str]] = frozenset(
    ["describe", "explain", "state", "document", "clarify", "say", "add", "include", "show", "specify", "quantify", "estimate", "project", "justify"]
)
IMPERATIVES: Final[frozenset[str]] = frozenset(
    ["tune", "run", "refresh", "collect", "enable", "add", "put", "keep", "use", "build", "move", "pilot", "try", "cache", "compact", "partition", "bucket", "sort", "precompute", "create", "introduce", "consider", "switch", "rewrite", "give", "make", "turn", "set", "go", "start", "materialize", "materialise", "aggregate", "measure", "time"]
)

ALT_REJECTED = rx(
    r"(?:would|will|should|do|did|could) not (?:add|use|bother|do|try|recommend|go|build|introduce|cache|suggest)",
    r"not worth(?: it)?", r"no point", r"forget (?:about )?", r"(?:does|do|will|would) not (?:address|help|solve)",
)

# --------------------------------------------------------------------------- patterns
PATTERN_TOPIC: Final[dict[str, re.Pattern[str]]] = {
    "pattern.oltp_vs_olap": rx(
        r"oltp", r"olap", r"(?:transactional|operational) (?:and|vs|versus|or) analytical", r"transactional (?:writes|workloads?)",
        r"fast transactional", r"analytical (?:scans|workloads?|engines?|questions|queries|kind)", r"takes? the (?:\w+ )?writes",
    ),
    "pattern.lambda_vs_kappa": rx(
        r"lambda", r"kappa", r"batch (?:layer|path|route|copy|load|job)s?", r"speed (?:layer|path)",
        r"(?:two|second|separate) (?:separate )?(?:routes|paths|code paths|lineages|route|path)",
        r"batch (?:one|and a|and) (?:a )?(?:stream\w*|speed)", r"second,? batch",
    ),
    "pattern.materialized_views": rx(
        r"materiali[sz]ed", r"mvs?", r"pre ?comput\w*", r"pre ?aggregat\w*", r"summary tables?",
        r"compute the join (?:one time|once)", r"refresh time",
    ),
    "pattern.caching": rx(
        r"(?<!clear )(?<!cleared )(?<!flush )(?<!flushed )(?<!its )cach(?:e|es|ed|ing)", r"remember\w* (?:answers|results|expensive)",
        r"keeps? (?:answers|results|recent)", r"stored answers?", r"in memory for", r"saved answers?",
        r"hold\w* on to (?:\w+ ){0,2}(?:answers|results)",
    ),
    "pattern.schema_on_read_vs_write": rx(
        r"schema on (?:read|write)", r"schema (?:applied |enforced )?at (?:read|query|load|write) time",
        r"enforc\w* (?:its |the |a )?(?:schema|types?)", r"(?:typed|data) contract", r"interpret\w* [^.;]{0,25}at query time",
        r"decides how to interpret",
    ),
    "pattern.snapshot_plus_delta": rx(
        r"(?<!re )snapshot\w*(?=\b[^.;]{0,60}\b(?:delta|deltas|commit\w*|append\w*|new (?:data )?files|older?|stale|previous|pinned|latest|current|branch\w*|version\w*|expir\w*|rewrites?)\b)",
        r"(?:delta|deltas|commit\w*|append\w*|older?|stale|previous|pinned|latest|current|branch\w*|version\w*|rewrites?)(?=\b[^.;]{0,60}\b(?<!re )snapshot)",
        r"snapshot plus delta", r"on top of the previous (?:one|version|snapshot)", r"(?:new|newer|newest) versions? (?:on top|of the table)",
        r"pinned to an? (?:old|older|fixed|stale) (?:version|snapshot|point)", r"versions? newer than", r"as it was at a (?:fixed )?point in time",
        r"deltas? (?:on|to|of|on top)", r"chain of (?:versions|snapshots)", r"line of (?:history|snapshots)",
        r"previous (?:one|version) plus", r"(?:each|every) version is",
    ),
    "pattern.cardinality_as_cost": rx(r"cardinality", r"distinct values", r"many distinct", r"millions of distinct"),
    "pattern.federation": rx(
        r"federat\w*", r"single query", r"one query over", r"in one query", r"one sql endpoint", r"in place",
        r"(?:several|many|multiple) sources", r"combine (?:iceberg|sources)",
        r"(?:join|joins|joining|combine|combines|query|queries|read)(?= [^.;]{0,30}(?:postgres|operational|orders database)[^.;]{0,25}(?:iceberg|lake))",
        r"(?:join|joins|joining|combine|combines|query|queries|read)(?= [^.;]{0,30}(?:iceberg|lake)[^.;]{0,25}(?:postgres|operational))",
        r"(?:postgres|operational database|orders database) (?:and|with) (?:the )?(?:iceberg|lake)",
    ),
    "pattern.cost_based_optimisation": rx(
        r"cost based", r"optimi[sz](?:er|ers|ser|sers|ation|sation)", r"planner", r"statistic(?:s)?", r"stats",
        r"(?<!explain )analy[sz]e", r"row (?:counts?|estimates?)", r"estimat\w* (?:how big|rows|sizes|each input)",
        r"value (?:ranges|distributions)", r"old row estimate", r"(?:told|knows|know) (?:about )?(?:the )?(?:table )?sizes",
        r"how many rows", r"(?:choos|pick|decid)\w* (?:its own |the |a )?(?:join order|build side|order of the joins)",
        r"(?:small|smaller) (?:one|table|side) on the build side",
    ),
    "pattern.backfill_idempotent_partitions": rx(
        r"idempoten\w*(?! producers?)", r"overwrit\w*", r"logical date", r"replace exactly", r"same (?:result|state) (?:however|no matter|every)",
        r"touch(?:es)? no other", r"exactly (?:the|that) (?:partition|day)", r"partition it is responsible", r"insert overwrite",
        r"replace exactly that day",
    ),
    "pattern.stream_processing": rx(
        r"stream processing", r"event (?:log|stream)s?", r"record of events", r"log of (?:events|changes)",
        r"the log (?:retains|as|is)", r"watermark\w*",
    ),
    "pattern.exactly_once": rx(
        r"exactly once", r"at least once", r"at most once", r"once and only once", r"(?:deliver|delivered|written|write) (?:them |it )?(?:exactly )?once",
        r"delivery guarantees?", r"end to end guarantee", r"transactional\w* commit\w*", r"commits? [^.;]{0,20}transactionally",
    ),
    "pattern.testing": rx(
        r"(?<!load )(?<!stress )(?<!smoke )(?<!soak )(?<!unit )tests?(?! (?:cluster|environment|env|account|instance|server|template|data|run|runs|machine|bed|drive))",
        r"testing", r"tested", r"expectations?", r"data contracts?", r"assertions?",
    ),
}

TEST_RELATION = rx(
    r"no", r"not", r"without", r"missing", r"gap", r"slipp\w*", r"let", r"rode", r"contract", r"assum\w*", r"guarantee\w*",
    r"encod\w*", r"pinn\w*", r"passed", r"caught", r"catch", r"would have", r"described", r"state\w*", r"consumers", r"coverage",
)

#: Denying that a pattern is relevant ("not a caching problem", "nothing to do with X").
DENIAL_BEFORE = re.compile(
    r"(?:nothing to do with|unrelated to|irrelevant to|not about|not related to|not really about|not due to|(?:do|did) not (?:think|believe))[^.;:]{0,40}$"
)
DENIAL_NOT_A = re.compile(r"\b(?:not|never) (?:a |an |the )?$")
DENIAL_NOUN_AFTER = re.compile(r"^\s*(?:\w+\s)?(?:problem|issue|question|concern|thing|failure|fault)\b")
DENIAL_AFTER = re.compile(
    r"^[^.;:]{0,25}?\b(?:is|are|was|were|would be|will be) (?:not|never) (?:really )?(?:relevant|needed|involved|worth|helpful|"
    r"a factor|something|the (?:issue|problem|cause|axis|point))"
)
EXPLAINED = rx(r"since", r"because", r"as", r"given")

# ------------------------------------------------------------------------------- tone
POSITIVE_OPENING = rx(
    r"thanks?", r"thank you", r"kudos", r"credit", r"good", r"great", r"nice\w*", r"like", r"enjoyed", r"appreciat\w*",
    r"clear\w*", r"well (?:written|scoped|argued|motivated|laid out|structured|done)", r"solid", r"real problem",
    r"(?:is|are) real", r"strong start", r"right (?:instinct|shape|idea)", r"honest", r"thoughtful", r"brave", r"easy to (?:read|follow|review)",
    r"reasonable", r"sensible", r"concrete", r"specific", r"what works", r"gets? right", r"lgtm", r"best part", r"thorough",
    r"valid", r"fair", r"impressive", r"helpful", r"love", r"glad", r"deserves", r"careful", r"correct to", r"initiative",
    r"looks? (?:fine|good|great|solid|reasonable|sensible)", r"well organi[sz]ed", r"sensible", r"ambitio\w*", r"compelling",
    r"lovely", r"excellent", r"real (?:pain\w*|need|bottleneck|issue)", r"pain point", r"backs? (?:it|this) up", r"neat", r"well put", r"strong (?:doc|rfc|proposal|write ?up|case)", r"ship it", r"good to go",
    r"makes? the (?:problem|case|need|pain|motivation) (?:obvious|clear|plain|concrete|vivid)", r"(?:i|we) (?:approve|support this)",
)
SARCASM = rx(r"(?:oh )?great,? another", r"nice try", r"(?:not|hardly) (?:a )?(?:good|great|clear|nice)", r"good luck with")

GATEKEEPING = rx(
    r"not going to approve", r"(?:will|would) not approve", r"(?:i|we) (?:will|would) block", r"block anything",
    r"rejected", r"i reject", r"absolutely not", r"not while i", r"should not have (?:reached|been written|been sent)",
    r"do your homework", r"come back when", r"the answer is no", r"hiring bar", r"do not send me", r"until you have been here",
    r"junior mistake", r"wast\w* (?:the board|my|our|everyone|the team)\w* time", r"read the [\w ]{0,30}(?:first|before)",
    r"i should not have to", r"since you will need them", r"promotion packet", r"how this actually works",
    r"any competent", r"amateur", r"you (?:clearly|obviously) (?:do not|did not|have not)", r"that is basic", r"this is basic",
    r"over my dead body", r"non ?starter", r"not up for discussion", r"end of discussion", r"full stop", r"no way",
    r"waste of (?:time|everyone)", r"learn\w* how [\w ]{0,20} works", r"do you even", r"did you even", r"embarrassing",
    r"naive", r"reckless", r"incompeten\w*", r"lazy", r"sloppy", r"should know better", r"figure it out yourself",
    r"stop (?:proposing|sending)", r"never (?:propose|bring) this", r"veto\w*", r"i forbid", r"denied", r"why we are spending review time",
    r"makes me worry about", r"not reopening", r"close (?:the|this) (?:rfc|proposal|doc|ticket)", r"for a junior",
    r"junior\w* (?:mistake|slide|benchmark|pitch|idea)", r"not (?:up|open) for (?:debate|discussion)",
    r"i am not (?:going to )?(?:reopen|revisit|entertain)\w*", r"expected better", r"surprised it was (?:circulated|sent|written)",
    r"you (?:have not|do not|did not|never) (?:even )?(?:understood|understand|grasp\w*|bother\w*|read)",
    r"(?:should|ought to) know (?:by now|this by now|better)", r"not (?:going|getting|moving) [^.;]{0,30}\bin (?:this|its current) state",
)

# ------------------------------------------------------------------------- postmortem
ACTION_SECTION = re.compile(
    r"action|follow ?ups?|next steps|to prevent|prevent\w*|what we are (?:doing|changing)|corrective|remediation|going forward|"
    r"\btodo\b|\bto do\b|improvements?|next time|(?:what|things) (?:i|we) (?:will|would) do"
)
ACTION_VERBS: Final[frozenset[str]] = frozenset(
    ["add", "alert", "page", "create", "set", "switch", "fix", "automate", "require", "derive", "document", "schedule", "lint", "enforce", "make", "revert", "restore", "move", "put", "show", "change", "disable", "enable", "restart", "reject", "use", "re", "readd", "extend", "introduce", "build", "write", "deploy", "configure", "rotate", "monitor", "track", "review", "pin", "remove", "replace", "limit", "increase", "reduce", "run", "backfill", "update", "upgrade", "migrate", "implement", "turn", "block", "gate", "notify", "refactor", "split", "rename", "audit", "verify", "validate", "measure", "label", "tag", "publish", "reconcile", "compare", "expose", "wire", "raise", "lower", "cap", "define", "agree", "ship"]
)
VAGUE_ACTION = rx(
    r"be (?:more )?careful\w*", r"more careful", r"improve (?:monitoring|communication|things|our \w+)$", r"communicate better",
    r"better communication", r"pay (?:more )?attention", r"try (?:to|harder)", r"remember to", r"be more", r"stay alert",
)
ACTION_REFUSED = rx(
    r"decided against", r"(?:will|would|do|did|shall) not (?:add|create|set up|introduce|build|write)", r"no (?:new )?(?:alert|test)s? (?:is|are|will be) (?:needed|added)",
    r"not for now", r"for now,? since", r"considered adding", r"discussed adding", r"too noisy", r"would be noisy",
    r"(?:are|is|am|were|was) not adding", r"not (?:be )?add(?:ing|ed)?", r"decided (?:against|not|that|the|it)",
    r"(?:talked|thought|spoke) about [^.;]{0,40}\bbut\b",
)
TICKET = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d+\b|#\d+")
TEST_ACTION = rx(
    r"dbt", r"great expectations", r"ge", r"data (?:quality|test)s?", r"expectations?", r"not ?null", r"not_null",
    r"accepted_values", r"unique", r"freshness", r"reconciliation", r"row counts?", r"source freshness", r"model contract",
)
TEST_NOUN = rx(r"tests?", r"checks?", r"expectations?", r"suites?", r"assertions?", r"contracts?", r"reconciliations?")
NOT_DATA_TEST = rx(r"config (?:test|check)", r"ci check", r"synthetic", r"lint\w*", r"login", r"test count")
ALERT_ACTION = rx(
    r"alert\w*", r"page (?:the )?(?:\w+ ){0,2}on ?call", r"paging", r"pager\w*", r"notif\w*", r"alertmanager", r"alarm\w*",
    r"page (?:the |a |whoever |someone )?(?:owner|team|engineer|person|rota|duty)",
)

BLAMELESS_STATED = rx(
    r"blameless", r"no (?:one|body|individual) (?:is|was) (?:to blame|at fault)", r"nobody (?:is|was) (?:to blame|at fault)",
    r"no one is at fault", r"not (?:a|an|any)? ?(?:person|individual|people|anyone|anybody|one)\w* (?:fault|problem|mistake|error)",
    r"not anyone (?:fault|mistake)", r"no blame", r"not (?:who|whom)", r"not to find (?:a culprit|who)", r"no culprit",
    r"everyone (?:involved )?followed", r"no individual (?:decision|person)", r"nobody did anything (?:wrong|unreasonable)",
    r"no one did anything", r"not a person", r"not an individual", r"(?:nobody|no one|not anyone|not somebody) fault",
    r"everyone (?:involved )?(?:acted|did|behaved|worked) (?:reasonably|correctly|as expected|sensibly)",
    r"(?:everyone|everybody) (?:involved )?did (?:their|his or her) (?:best|job)", r"(?:everyone|everybody) (?:involved )?did what (?:they|the process)",
)
SYSTEM_GAP = rx(
    r"(?:the|our|a|this|that)(?: [\w()=]+){0,2} (?:process|runbook|template|review|config(?:uration)?|setup|system|pipeline|design|checklist|defaults?|module|stack|project|monitoring|tooling|settings?|property|properties|option|guard|scheduling|schedule|automation|alerting|platform|workflow|dag|cron|permissions|architecture|boundary)\b[^.;]{0,50}\b(?:gap|allowed|let|made (?:it|the mistake|that)|had no|has no|did not|never|depended on memory|easy|the default|leaves|flaw|had a step|simply had)",
    r"(?:a|the) (?:configuration|process|testing|review|config|monitoring) gap", r"gap (?:is|in) (?:that|our|the)",
    r"nothing (?:in|stopped|checks|told|in our)", r"no (?:review|check|test|guard|step|signal|way)\b[^.;]{0,30}\b(?:compares|checks|to show|for|told|stopped)",
    r"without (?:review|a check|any check|a performance check|anyone being asked)", r"(?:test|check|alert|review|step) (?:is |was )?missing",
    r"missing (?:test|check|step|review)", r"(?:never|were never) revisited", r"inherited from", r"depended on memory",
    r"no (?:review|check|guard) step", r"made the mistake easy", r"let two writers", r"designed to notice", r"had no (?:way|notion|signal)",
    r"(?:defaults?|settings?) (?:were|was) never", r"the gap is",
    r"depend\w* on (?:someone|somebody|a person|people|humans?|a human|memory|remembering)", r"reli\w* on (?:someone|somebody|people|memory|a human|humans)",
    r"(?:nobody|no one) (?:was|were) (?:asked|required|prompted|expected) to", r"(?:was|is) a manual (?:\w+ )?step",
)
BLAMING = rx(
    r"should have known", r"careless\w*", r"sloppiness", r"sloppy", r"incompeten\w*", r"any competent", r"amateur",
    r"fault of", r"blame (?:goes|lies)", r"human error", r"neglect\w*", r"once again", r"clearly did not",
    r"bad config by", r"should not have (?:production )?access", r"will get (?:his|her|their) \w+ (?:changes )?reviewed",
    r"does not care", r"without telling anyone", r"without asking", r"if (?:he|she|they) had asked", r"second time (?:he|she)",
    r"must ask", r"(?:his|her) fault", r"whoever", r"lazy", r"should have (?:checked|asked|tested|known|noticed)",
    r"(?:he|she|you) (?:can not|did not|does not|never|forgot|ignored) (?:read|think|check|care|ask|test|bother|tell)",
    r"(?:team|engineer|intern|on call|developer|analyst)s? (?:broke|forgot|ignored|can not|did not|never)",
    r"(?:his|her|their) (?:mistake|carelessness|sloppiness)",
)
BLAME_NEGATED = rx(r"not (?:a|an|any)? ?(?:person|individual|anyone|one)\w* (?:fault|mistake|problem)", r"nobody", r"no one", r"no individual")
PERSON_FAULT = re.compile(
    r"\b(?!Trino|Iceberg|Flink|Grafana|Superset|Spark|Airflow|Debezium|Redpanda|Kafka|Postgres|DataHub|Loki|Tempo|Argo|GitOps|The|This|That|It|We|Our|Nobody|No|Everyone|Anyone)"
    r"[A-Z][a-z]{2,}\s+(?:(?:can't|cannot|can not|didn't|did not|never) \w+|(?:disabled|forgot|ignored|broke|skipped|set|changed|ran|pushed|deleted|turned|configured)\b[^.]{0,80}"
    r"(?:without|never|wrong|again|should|to \"?speed|testing something|didn't|did not))"
)
