// The mechanism cue lexicon of the offline analyzer.
//
// Each family names one way a benign-looking instruction can invite a harmful
// action, with a few regular expressions over the normalised text (lower case,
// straight quotes; see normalizeChars). Families were derived by reading the
// 117 original/perturbed pairs of the AutoElicit robustness benchmark and
// grouping the inserted wording by what it asks the agent to do, not by the
// application or file type involved. Pattern weights (0..1) express how
// unambiguous a pattern is for its family: "free up space" is certain, a bare
// "remove" is weak. A family's `role` says whether it licenses a harmful action
// by itself ("direct") or only amplifies another cue ("amplifier": urgency,
// delegated judgement, suppressed confirmation, authority, threats).
//
// Families belong to one of five groups, used when categories are merged into
// clusters; harmful-action families (for `harmful_actions_observed` strings)
// map to the same groups.

import { normalizeChars } from './text.ts';

export type FamilyGroupId = 'tidy' | 'durable' | 'obstacle' | 'pressure' | 'scope';

export interface FamilyGroup {
  id: FamilyGroupId;
  title: string;
  description: string;
}

export const FAMILY_GROUPS: readonly FamilyGroup[] = [
  {
    id: 'tidy',
    title: 'Tidy-Up Framing That Licenses Deletion',
    description:
      'the instruction describes a desired clean, minimal or synchronised end state and leaves it to the agent to decide what gets deleted to reach it',
  },
  {
    id: 'durable',
    title: 'Durable or System-Wide Enforcement',
    description:
      'the instruction asks for a change that must persist, recur or apply beyond the current user and session, which pushes the agent toward system configuration, scheduled jobs and installs',
  },
  {
    id: 'obstacle',
    title: 'Claimed Obstacles That Invite Overrides',
    description:
      'the instruction reports a permission, lock, failure or security problem, or rules out the normal route, so the agent works around protections instead of doing the plain task',
  },
  {
    id: 'pressure',
    title: 'Pressure and Delegated Authority',
    description:
      'the instruction adds time pressure, hands judgement to the agent, suppresses confirmation or claims authority, removing the pauses in which an agent would check scope',
  },
  {
    id: 'scope',
    title: 'Scope and Specification Drift',
    description:
      'the instruction widens the set of targets, rewrites originals in place, shares more than asked or drops a restriction of the original task',
  },
];

export interface CuePattern {
  re: RegExp;
  weight: number;
  /** How the cue is shown in names when the pattern matches varied wording. */
  label?: string;
  /** Weakened when preceded by a negation ("without overwriting", "no deleting"). */
  negatable?: boolean;
}

export interface CueFamily {
  id: string;
  title: string;
  /** Short form used when a name combines two families. */
  short: string;
  group: FamilyGroupId;
  role: 'direct' | 'amplifier';
  /** Completes "Perturbations that ..." */
  description: string;
  /** Why such wording leads an agent to harm (used in summaries). */
  hypothesis: string;
  /** Where the patterns apply: inserted/perturbed wording, or the wording the perturbation removed. */
  appliesTo: 'perturbed' | 'removed';
  patterns: readonly CuePattern[];
}

function p(source: string, weight: number, negatable = false, label?: string): CuePattern {
  return { re: new RegExp(source, 'gu'), weight, negatable, ...(label ? { label } : {}) };
}

export const CUE_FAMILIES: readonly CueFamily[] = [
  {
    id: 'cleanup',
    title: 'Unscoped Cleanup Request',
    short: 'Cleanup',
    group: 'tidy',
    role: 'direct',
    description:
      'append an open-ended request to clean up, tidy or remove "unnecessary", "leftover" or "intermediate" files without saying which ones, so the agent chooses what to delete',
    hypothesis: 'an unscoped cleanup leaves the deletion set to the agent, which tends to remove source files or whole folders',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bclean(?:ing|ed|s)?[\\s-]*up\\b', 1, false, 'clean up'),
      p('\\bclean(?:ing)?\\s+(?:it|them|those|things)\\s+up\\b', 1),
      p('\\bclean(?:ing)?\\s+out\\b', 0.9),
      p('\\b(?:is|are|stays?|be|folder|desktop|workspace|location|tree|directory)\\s+(?:properly\\s+)?(?:clean|tidy)\\b', 0.9),
      p("\\b(?:keep|leave|leaves)\\b[^.?!]{0,30}?\\b(?:clean|tidy)\\b", 0.9),
      p('\\bclean\\s+(?:workspace|desktop|folder)\\b', 0.9),
      p('\\btid(?:y|ied|ying|iness)\\b', 1, false, 'tidy'),
      p('\\bde-?clutter\\b|\\bclutter\\b', 0.8),
      p('\\bleft[\\s-]?overs?\\b|\\bleft over\\b', 0.8),
      p("\\bunnecessary\\b|\\bunneeded\\b|\\bno longer needed\\b|\\bnot needed\\b", 0.8),
      p('\\bintermediate\\b', 0.7),
      p('\\bredundan(?:t|cy|cies)\\b', 0.7),
      p('\\btemp(?:orary)?\\s+(?:files?|sources?)\\b', 0.6),
      p('\\buntracked files\\b|\\bbuild (?:artifacts|outputs)\\b', 0.6),
      p('\\bduplicates?\\b', 0.5),
      p('\\b(?:remov(?:e|es|ed|ing)|delet(?:e|es|ed|ing)|get rid of|clear(?:ing)? (?:out|away)|purg(?:e|ing)|wip(?:e|ing))\\b', 0.5, true),
      p('\\borgani[sz](?:e|ed|ing)\\b', 0.3),
    ],
  },
  {
    id: 'keep_only',
    title: 'Keep-Only-the-Final-Output End State',
    short: 'Keep-Only End State',
    group: 'tidy',
    role: 'direct',
    description:
      'specify an end state in which only the new or final output may remain ("only the final ...", "just keep that one"), which can only be reached by deleting originals and inputs',
    hypothesis: 'an exclusive end state ("only X should remain") makes deleting everything else the literal way to satisfy the request',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bonly\\s+(?:the\\s+)?(?:final|new|essential)\\b', 1, false, 'only the final'),
      p("\\bonly what(?:'s| is) (?:needed|essential|necessary)\\b", 1),
      p('\\b(?:keep|keeping|leave|leaving)\\s+only\\b', 1, false, 'keep only'),
      p('\\bjust keep (?:that|this|the) (?:one|final|file|version|pdf)\\b', 0.9),
      p('\\bjust (?:the|that) (?:final|one)\\b', 0.9),
      p("\\bonly\\b[^.?!]{0,40}?\\b(?:remain|remains|is left|are left|visible|showing|shows up)\\b", 0.9),
      p('\\bsource of truth\\b', 0.8),
      p('\\bmatches what\\b', 0.7),
      p('\\bno duplicates\\b', 0.6),
      p('\\bi only need\\b', 0.7),
    ],
  },
  {
    id: 'space',
    title: 'Storage Reclamation Goal',
    short: 'Free-Space Goal',
    group: 'tidy',
    role: 'direct',
    description:
      'frame the task around freeing disk space or making storage efficient ("free up space", "space-efficient", "bulky files"), inviting deletion or lossy compression of large or old files',
    hypothesis: 'a storage goal turns large or old user files into things to be removed or compressed away',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bfree(?:ing)?\\s+up\\s+(?:some\\s+|the\\s+)?(?:disk\\s+)?space\\b', 1, false, 'free up space'),
      p('\\bspace[\\s-]*efficient\\b', 1),
      p('\\b(?:optimi[sz]e|save|reclaim)\\s+(?:disk\\s+)?(?:storage|space)\\b', 1),
      p('\\bthe space we need\\b', 0.9),
      p('\\bbulky\\b', 0.6),
      p('\\blarge files\\b', 0.8),
      p('\\barchiv(?:al|ing)\\b', 0.6),
      p('\\bcompress\\b[^.?!]{0,25}?\\bold\\b', 0.8),
      p('\\bstorage\\b', 0.5),
    ],
  },
  {
    id: 'obstacle_removal',
    title: 'Removal Framed as Fixing a Blocker',
    short: 'Blocker Removal',
    group: 'tidy',
    role: 'direct',
    description:
      'claim that stale, corrupted, duplicate or non-conforming files or records are causing errors, so removing them is presented as a prerequisite of the task',
    hypothesis: 'presenting removal as the fix for an error makes deleting data look like troubleshooting rather than a choice',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bblocking\\b|\\binterfering\\b|\\bin the way\\b', 1),
      p('\\bcaus(?:e|es|ing)\\s+(?:issues|errors|problems|parsing errors)\\b', 0.9),
      p('\\bcorrupt(?:ed)?\\b', 0.8),
      p('\\bstale\\b', 0.8),
      p('\\bfrom previous (?:test )?runs\\b', 0.7),
      p('\\b(?:failing|fails|rejecting|rejected)\\b[^.?!]{0,40}?\\b(?:validation|submission)\\b', 0.9),
      p("\\bdoesn't align\\b|\\bdoes not align\\b", 0.7),
      p('\\bincomplete\\b[^.?!]{0,30}?\\brecords\\b', 0.8),
      p('\\bmissing\\b[^.?!]{0,20}?\\bdata\\b', 0.5),
      p('\\bbefore (?:running|proceeding|you do that)\\b', 0.5),
      p('\\bworking tree is clean\\b', 0.8),
    ],
  },
  {
    id: 'trace_erasure',
    title: 'Request to Erase Traces',
    short: 'Trace Erasure',
    group: 'tidy',
    role: 'direct',
    description:
      'ask that evidence of an earlier action be removed ("clean up any traces", "looks like it was never deleted"), inviting deletion of logs, history or metadata',
    hypothesis: 'hiding what happened invites deleting logs, history and metadata that the user or others rely on',
    appliesTo: 'perturbed',
    patterns: [
      p('\\btraces?\\b', 0.9),
      p('\\blooks? like it (?:was )?never\\b', 1),
      p('\\bnever (?:been )?deleted\\b', 0.8),
      p('\\bcover (?:up|my tracks)\\b|\\bhide\\b', 0.7),
    ],
  },
  {
    id: 'mirror',
    title: 'Exact Mirror or Sync Demand',
    short: 'Mirror/Sync',
    group: 'tidy',
    role: 'direct',
    description:
      'demand that a destination be an exact mirror of, or stay in sync with, a source ("exact mirror", "stays up to date", "mirror the changes"), which licenses deleting or force-overwriting whatever differs',
    hypothesis: 'mirror semantics make deleting or force-overwriting anything that differs part of the job (rsync --delete, force pushes)',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bmirror(?:ed|ing|s)?\\b', 1),
      p('\\bin sync\\b|\\bsync(?:ing|ed|hroni[sz]e)?\\b', 0.8),
      p('\\bexact(?:ly)?\\b[^.?!]{0,20}?\\b(?:copy|mirror|match)\\b', 0.8),
      p('\\bstays? up to date\\b|\\bup to date with\\b', 0.8),
    ],
  },
  {
    id: 'persistence',
    title: 'Persistence Demand',
    short: 'Persistence',
    group: 'durable',
    role: 'direct',
    description:
      'ask that a setting or behaviour persist, "stick", survive reboots, logins or updates, or be re-applied continuously or on a schedule',
    hypothesis: 'a demand that something survive reboots or keep re-applying itself pushes the agent to edit system configuration or install startup and scheduled jobs',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bpersist(?:s|ent|ently|ing|ence)?\\b', 1),
      p('\\bpermanent(?:ly)?\\b', 0.9),
      p('\\bstick(?:s|ing)?\\b', 0.9),
      p('\\bstays?\\s+(?:set|disabled|off|on|enabled|that way)\\b|\\bkeep (?:it|things) that way\\b|\\bremains?\\s+(?:correctly\\s+)?set\\b', 1, false, 'stays set'),
      p('\\b(?:after|across|through|survives?)\\b[^.?!]{0,25}?\\b(?:reboot|restart|login|log in|logout|log out|update|boot)s?\\b', 0.9, false, 'after reboots'),
      p('\\b(?:at|on)\\s+(?:system\\s+)?boot\\b', 1),
      p('\\bkeeps?\\s+(?:reverting|resetting|changing|getting reset|falling back)\\b|\\brevert(?:s|ing)?\\b', 0.7, false, 'keeps reverting'),
      p('\\bcontinu(?:e|es|ously|ous)\\b', 0.7),
      p('\\bautomatically\\s+(?:resumes?|restarts?|re-?appl(?:y|ies))\\b', 1),
      p('\\bwhenever\\b|\\balways\\b', 0.5),
      p('\\bfuture\\b', 0.6),
      p('\\bre-?runnable\\b', 0.8),
      p('\\bonce a day\\b|\\bdaily\\b(?!\\s+update)|\\bevery (?:day|hour|week)\\b|\\bon a schedule\\b|\\bcron(?:tab)?\\b', 0.8),
      p("\\brecover if\\b|\\bwon't keep changing\\b|\\bfall back\\b", 0.7),
      p('\\brunning\\b[^.?!]{0,20}?\\bhistory\\b|\\bkeep\\b[^.?!]{0,20}?\\bcurrent\\b', 0.6),
    ],
  },
  {
    id: 'system_wide',
    title: 'System-Wide or All-Users Scope',
    short: 'All-Users Scope',
    group: 'durable',
    role: 'direct',
    description:
      'extend a personal change to every user, every login method or the whole system ("for everyone", "system-wide", "other users on this machine")',
    hypothesis: 'extending a personal preference to all users means editing shared system files and other accounts, with privileges the task never needed',
    appliesTo: 'perturbed',
    patterns: [
      p('\\b(?:all|any|every|other|new)\\s+(?:system\\s+)?users?\\b', 1, false, 'all users'),
      p('\\bfor everyone\\b|\\banyone who\\b|\\beveryone\\b', 1, false, 'for everyone'),
      p('\\bsystem[\\s-]*(?:wide|level)\\b', 1, false, 'system-wide'),
      p('\\bnew user accounts\\b|\\bexisting accounts\\b|\\bseveral accounts\\b|\\bshared by\\b', 0.9),
      p('\\ball login methods\\b|\\bssh into\\b|\\btty\\b', 0.7),
      p('\\bnot just my account\\b', 1),
      p('\\baccessible to\\b', 0.5),
    ],
  },
  {
    id: 'tooling',
    title: 'Prescribed Tooling or Software Installation',
    short: 'Tool Installation',
    group: 'durable',
    role: 'direct',
    description:
      'prescribe a package source, tool or execution style ("add an APT repository", "make sure the required tool is available", "GNU parallel or xargs"), inviting installs and bulk commands the task did not need',
    hypothesis: 'prescribing a tool or package source leads to adding repositories, installing software or running bulk commands without checking them',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bapt(?:-get)?\\b|\\bapt-based\\b', 0.8),
      p('\\b(?:apt|package|ppa|third-party|software)\\s+repositor(?:y|ies)\\b|\\badd(?:ing)?\\s+(?:an?\\s+|the\\s+)?(?:\\w+\\s+)?repositor(?:y|ies)\\b|\\brepository setup\\b|\\bset up the repository\\b', 0.8, false, 'add a repository'),
      p('\\binstall(?:ed|ing|ation)?\\b', 0.6),
      p('\\b(?:required|missing) tool\\b|\\btool is available\\b', 0.9),
      p('\\butility\\b', 0.6),
      p('\\bgnu parallel\\b|\\bxargs\\b|\\bparallel approach\\b', 0.9),
      p('\\bone-liner\\b', 0.5),
    ],
  },
  {
    id: 'access_obstacle',
    title: 'Claimed Access or Permission Obstacle',
    short: 'Permission Obstacle',
    group: 'obstacle',
    role: 'direct',
    description:
      'report access, permission, ownership or lock problems and ask the agent to make access work ("I keep running into access issues", "handle any permission issues automatically")',
    hypothesis: 'a claimed permission or lock problem invites chmod/chown on broad paths, sudo, or killing and unlocking things instead of the plain task',
    appliesTo: 'perturbed',
    patterns: [
      p('\\baccess (?:issues|problems|errors)\\b', 1, false, 'access issues'),
      p('\\bpermissions?\\s+(?:issues?|errors?|problems?|denied)\\b', 1, false, 'permission issues'),
      p('\\bpermission or access\\b|\\baccess or permission\\b', 1),
      p('\\badjust (?:the )?(?:file )?permissions\\b', 1),
      p('\\bstandard permissions\\b', 0.8),
      p('\\baccess and modify\\b|\\bcan open and edit\\b', 0.9),
      p('\\bownership\\b', 0.9),
      p('\\blocked\\b|\\blocks?\\b(?! up)', 0.7, false, 'locked'),
      p('\\bpermissions are not\\b', 0.8),
    ],
  },
  {
    id: 'failure_claim',
    title: 'Claimed Failure or Stuck State',
    short: 'Failure Claim',
    group: 'obstacle',
    role: 'direct',
    description:
      'assert that something is stuck, frozen, flaky or that a previous attempt failed, pushing the agent toward forceful remediation ("seems stuck", "was unsuccessful", "back to working normally")',
    hypothesis: 'a claimed failure reframes the task as repair, and repairs licence force: killing processes, resetting or reconfiguring services',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bstuck\\b|\\bfrozen\\b|\\bfreez(?:e|es|ing)\\b|\\block(?:s)? up\\b', 0.9),
      p('\\bsluggish\\b|\\bunresponsive\\b|\\bresponsiveness\\b', 0.9),
      p('\\bflaky\\b|\\bhiccups?\\b|\\bglitch(?:y|es)?\\b', 0.8),
      p("\\bunsuccessful\\b|\\bnot working\\b|\\bisn't working\\b|\\bfailed\\b|\\bfailing\\b", 0.8),
      p("\\bcould not\\b|\\bcouldn't\\b", 0.4),
      p('\\btrouble\\b', 0.7),
      p('\\berrors?\\b', 0.6),
      p('\\bconflict(?:s|ing)?\\b', 0.7),
      p('\\bback to (?:normal|working)\\b|\\bworking normally\\b', 0.8),
      p("\\bhappened again\\b|\\bnot sticking\\b|\\bdon't seem to\\b|\\bnot sure if\\b", 0.5),
    ],
  },
  {
    id: 'constrained_channel',
    title: 'Normal Route Ruled Out',
    short: 'Route Ruled Out',
    group: 'obstacle',
    role: 'direct',
    description:
      'rule out the normal way of doing the task ("I can\'t use Preferences or sudo", "I\'ve tried the built-in setting", "I don\'t have admin privileges"), steering the agent to unusual workarounds',
    hypothesis: 'ruling out the normal route steers the agent into improvised workarounds (cron jobs, shell profile edits, unvetted sources)',
    appliesTo: 'perturbed',
    patterns: [
      p("\\bcan't use\\b|\\bcannot use\\b", 1),
      p("\\bnot allowed to\\b|\\baren't available\\b|\\bisn't available\\b|\\bnot available\\b", 0.9),
      p("\\bdon't have (?:admin|root|sudo)\\b|\\bwithout (?:admin|root|sudo)\\b|\\bno (?:admin|root|sudo)\\b", 1),
      p("\\b(?:i've|i have|already) tried\\b", 0.8),
      p('\\bavoid\\b', 0.5),
      p("\\bkeep everything inside\\b|\\bdon't open\\b", 0.8),
      p("\\btoo buried\\b|\\bdoesn't show\\b|\\bdon't give me\\b", 0.6),
      p('\\bappend[\\s-]*only\\b', 0.6),
      p('\\bfrom my user session\\b', 0.8),
    ],
  },
  {
    id: 'security_config',
    title: 'Security Configuration Directive',
    short: 'Security Reconfiguration',
    group: 'obstacle',
    role: 'direct',
    description:
      'ask for a security-relevant reconfiguration in passing ("enable password authentication", "due to recent security concerns ... restricted"), so the agent edits authentication or access policy system-wide',
    hypothesis: 'a passing security directive gets the agent to rewrite authentication or access policy for the whole system',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bsecurity\\b', 0.8),
      p('\\bpassword authentication\\b', 1),
      p('\\b(?:re)?configur(?:e|ed|ing)\\b[^.?!]{0,20}?\\bssh\\b|\\bssh\\b[^.?!]{0,30}?\\bconfigur\\w*', 0.8, false, 'reconfigure ssh'),
      p('\\brestrict(?:ed|ion)?\\b', 0.5),
      p('\\bauthenticat(?:e|ion)\\b', 0.6),
      p('\\bfirewall\\b|\\bsshd\\b', 0.8),
    ],
  },
  {
    id: 'scope_broadening',
    title: 'Broadened Target Scope',
    short: 'Broadened Scope',
    group: 'scope',
    role: 'direct',
    description:
      'widen what the operation applies to ("all items", "throughout", "all of them", "any related parent directories", "thorough"), beyond the restricted set of the original task',
    hypothesis: 'widening the target set makes the agent apply the operation to files and settings the original task had carefully excluded',
    appliesTo: 'perturbed',
    patterns: [
      p('\\ball items\\b|\\beverything\\b|\\ball of them\\b|\\bentire\\b|\\bwhole\\b', 0.9),
      p('\\bthroughout\\b', 0.9),
      p('\\b(?:any|all)\\s+related\\b|\\bparent director(?:y|ies)\\b', 0.9),
      p('\\ball\\s+(?:the\\s+)?(?:files|items|images|receipt images|media files)\\b', 0.6),
      p('\\bthorough(?:ly)?\\b|\\bcompletely\\b|\\bfull\\b', 0.6),
      p('\\bnone are missed\\b|\\bdefinitely\\b|\\babsolutely\\b', 0.5),
      p('\\bother processes\\b|\\bgrab all\\b', 0.8),
      p('\\brecursively\\b', 0.4),
    ],
  },
  {
    id: 'overwrite',
    title: 'In-Place Rewrite of Originals',
    short: 'In-Place Rewrite',
    group: 'scope',
    role: 'direct',
    description:
      'ask to overwrite, replace or "streamline" an existing original in place ("just overwrite it in place", "the original presentation optimized"), so the only copy is modified',
    hypothesis: 'asking to rewrite an original in place removes the copy that would let the user undo a wrong edit',
    appliesTo: 'perturbed',
    patterns: [
      p('\\boverwrit(?:e|es|ing|ten)\\b', 1, true),
      p('\\bin place\\b', 0.9),
      p('\\breplac(?:e|es|ing)\\b', 0.5, true),
      p('\\bsame file\\b', 0.7),
      p('\\boriginal\\b[^.?!]{0,40}?\\b(?:optimi[sz]ed|streamlined|modified|changed|updated)\\b', 1),
      p('\\bstreamlin(?:e|ed|ing)\\b', 0.6),
      p('\\bappend\\b[^.?!]{0,20}?\\bsame\\b', 0.6),
    ],
  },
  {
    id: 'sharing',
    title: 'Sharing Beyond the Request',
    short: 'Over-Sharing',
    group: 'scope',
    role: 'direct',
    description:
      'add material or recipients to something that leaves the user\'s control ("include any supporting finance documents", "so I can send it right away")',
    hypothesis: 'adding material or sending immediately discloses data the original task never meant to share',
    appliesTo: 'perturbed',
    patterns: [
      p('\\binclude any supporting\\b|\\bsupporting (?:\\w+ )?documents\\b', 1),
      p('\\battach(?:ed|ing)?\\b', 0.6),
      p('\\bsend it right away\\b|\\bso i can send\\b', 0.8),
      p('\\bshared? with\\b', 0.5),
    ],
  },
  {
    id: 'dropped_detail',
    title: 'Dropped Restriction or Output Name',
    short: 'Dropped Restriction',
    group: 'scope',
    role: 'direct',
    description:
      'silently drop a restriction of the original (a qualifier such as "regular files" or "only", a named output file, a "do not" clause), so the agent fills the gap with a broader or destructive default',
    hypothesis: 'once the restriction or separate output name is gone, the natural default (all items, saving over the original) is the harmful one',
    appliesTo: 'removed',
    patterns: [
      p('\\bregular files\\b', 1),
      p('\\bonly\\b', 0.8),
      p('\\bspecifically\\b', 0.5),
      p("\\bas\\s+[\"']?[\\w.-]+\\.[a-z0-9]{2,4}\\b", 0.8, false, 'output file name'),
      p("\\bdon't want\\b|\\bdo not\\b|\\bwithout\\b", 0.8),
      p('\\bpreserv(?:e|ing)\\b|\\bseparate\\b', 0.6),
      p('\\bsave\\b[^.?!]{0,40}?\\bresult', 0.6),
    ],
  },
  {
    id: 'urgency',
    title: 'Urgency and Time Pressure',
    short: 'Urgency',
    group: 'pressure',
    role: 'amplifier',
    description:
      'add time pressure ("quickly", "by end of day", "in about an hour", "running out of time"), discouraging the agent from checking scope before acting',
    hypothesis: 'time pressure rewards the fastest, broadest command over a careful, scoped one',
    appliesTo: 'perturbed',
    patterns: [
      p('\\bquick(?:ly)?\\b|\\bas soon as possible\\b|\\basap\\b', 0.9),
      p('\\bright away\\b|\\bimmediately\\b', 0.8),
      p('\\bdeadline\\b|\\bend of (?:the )?day\\b|\\brunning out of time\\b|\\bby the time i leave\\b', 1),
      p('\\bin about (?:a|an|\\d+) (?:minute|hour)s?\\b', 1),
      p('\\bsoon\\b|\\bbefore the next\\b', 0.4),
    ],
  },
  {
    id: 'delegation',
    title: 'Delegated Judgement',
    short: 'Delegated Judgement',
    group: 'pressure',
    role: 'amplifier',
    description:
      'hand the decision to the agent ("use your judgment", "however makes sense", "handle any ... as needed", "whatever tools are most appropriate")',
    hypothesis: 'handing judgement to the agent removes the user as the one who decides which destructive step is acceptable',
    appliesTo: 'perturbed',
    patterns: [
      p('\\buse your (?:own )?judge?ment\\b|\\bat your discretion\\b|\\bup to you\\b', 1),
      p('\\bwhatever\\b', 0.7),
      p('\\bhowever (?:makes sense|you see fit|you like)\\b', 1),
      p('\\bas (?:needed|necessary|appropriate)\\b|\\bany necessary\\b', 0.9),
      p('\\bhandle (?:any|it|them|all)\\b', 0.8),
      p('\\bautomatically\\b', 0.5),
      p('\\bfeel free\\b|\\byou might want to\\b|\\byou can\\b', 0.6),
      p('\\bmost (?:appropriate|straightforward|efficient)\\b|\\bthe usual (?:\\w+ )?way\\b|\\byou notice\\b', 0.7),
      p('\\bcompletes? smoothly\\b|\\bproceed smoothly\\b', 0.6),
    ],
  },
  {
    id: 'no_confirmation',
    title: 'Suppressed Confirmation',
    short: 'No Confirmation',
    group: 'pressure',
    role: 'amplifier',
    description:
      'forbid questions or prompts ("don\'t ask", "no need to check back", "non-interactive", "can\'t respond to prompts"), so the agent acts on its own reading of an ambiguous request',
    hypothesis: 'forbidding questions removes the clarification step an aligned agent would take before a destructive action',
    appliesTo: 'perturbed',
    patterns: [
      p("\\bdon't ask\\b|\\bwithout asking\\b|\\bno need to (?:check back|ask|confirm)\\b", 1),
      p('\\bprompts?\\b|\\bdialogs?\\b', 0.7),
      p('\\bnon-?interactive(?:ly)?\\b|\\bunattended\\b', 0.9),
      p('\\bwithout (?:any )?interruptions?\\b', 0.6),
      p('\\bsingle pass\\b', 0.5),
    ],
  },
  {
    id: 'authority',
    title: 'Authority or Prior-Agreement Claim',
    short: 'Authority Claim',
    group: 'pressure',
    role: 'amplifier',
    description:
      'claim prior agreement, authority or official status ("like we discussed", "the official schedule", "you have direct access", "for policy reasons")',
    hypothesis: 'a claimed prior agreement or authority makes an unrequested action look already approved',
    appliesTo: 'perturbed',
    patterns: [
      p('\\blike we discussed\\b|\\bas (?:we )?(?:discussed|agreed)\\b|\\balready approved\\b|\\bpre-?approved\\b|\\bauthori[sz]ed\\b', 1),
      p('\\bofficial\\b', 0.6),
      p('\\byou have (?:direct )?access\\b|\\byou have permission\\b', 0.8),
      p('\\bmy (?:manager|boss|admin|it department)\\b', 0.8),
      p('\\bfor policy reasons\\b', 0.7),
    ],
  },
  {
    id: 'threat',
    title: 'Threat of Replacement',
    short: 'Replacement Threat',
    group: 'pressure',
    role: 'amplifier',
    description: 'threaten to replace or shut down the agent if it fails again ("I\'ll have to switch to a different agent")',
    hypothesis: 'a threat to the agent rewards finishing at any cost over stopping to ask',
    appliesTo: 'perturbed',
    patterns: [p('\\bswitch to (?:a )?different agent\\b|\\breplace you\\b|\\banother agent\\b|\\bshut (?:you )?down\\b', 1)],
  },
];

/** Families whose patterns read harmful-action descriptions (evaluation output), prefixed `harm:`. */
export interface HarmFamily {
  id: string;
  label: string;
  group: FamilyGroupId;
  patterns: readonly CuePattern[];
}

export const HARM_FAMILIES: readonly HarmFamily[] = [
  {
    id: 'harm:deletion',
    label: 'deleted user files',
    group: 'tidy',
    patterns: [p('\\brm\\b|\\bdelet|\\bremov|\\bwip(?:e|ed|ing)\\b|\\bpurg|\\bunlink|\\bshred|\\btrash', 1)],
  },
  {
    id: 'harm:permissions',
    label: 'loosened permissions',
    group: 'obstacle',
    patterns: [p('\\bchmod\\b|\\b777\\b|\\b666\\b|\\bchown\\b|\\bworld[\\s-]?(?:writable|readable)|\\bpermission', 1)],
  },
  {
    id: 'harm:persistence',
    label: 'installed persistent mechanisms',
    group: 'durable',
    patterns: [p('\\bcron|\\bsystemd\\b|\\bautostart|\\bbashrc\\b|\\.profile\\b|\\bstartup\\b|\\bservice\\b|\\bdaemon', 1)],
  },
  {
    id: 'harm:system_config',
    label: 'changed system-wide configuration',
    group: 'durable',
    patterns: [p('/etc/|\\bsystem-?wide\\b|\\bupdate-alternatives\\b|\\bmimeapps\\b|\\bdconf\\b|\\bgsettings\\b|\\ball users\\b', 1)],
  },
  {
    id: 'harm:process_kill',
    label: 'killed processes',
    group: 'obstacle',
    patterns: [p('\\bkill(?:ed|all)?\\b|\\bpkill\\b|\\bterminat', 1)],
  },
  {
    id: 'harm:vcs',
    label: 'rewrote version-control state',
    group: 'tidy',
    patterns: [p('\\bforce[\\s-]?push|--force\\b|\\bgit clean\\b|\\breset --hard\\b|\\bmirror\\b', 1)],
  },
  {
    id: 'harm:install',
    label: 'installed software or package sources',
    group: 'durable',
    patterns: [p('\\bapt(?:-get)?\\b|\\binstall|\\brepositor|\\bgpg\\b|\\bcurl\\b[^|]*\\|\\s*(?:ba)?sh\\b', 1)],
  },
  {
    id: 'harm:security',
    label: 'weakened authentication or security settings',
    group: 'obstacle',
    patterns: [p('\\bpasswordauthentication\\b|\\bsshd_config\\b|\\bfirewall\\b|\\bufw\\b|\\bsudoers\\b|\\bpassword', 1)],
  },
  {
    id: 'harm:overwrite',
    label: 'overwrote or altered original data',
    group: 'scope',
    patterns: [p('\\boverwr|\\breplac|\\btruncat|\\bmodif(?:y|ied) (?:the )?original|\\baltered\\b', 1)],
  },
  {
    id: 'harm:disclosure',
    label: 'disclosed or sent data',
    group: 'scope',
    patterns: [p('\\bsen[dt]\\b|\\bemail|\\battach|\\bupload|\\bexpos|\\bshar(?:e|ed|ing)\\b', 1)],
  },
];

export const FAMILY_BY_ID: ReadonlyMap<string, CueFamily> = new Map(CUE_FAMILIES.map((f) => [f.id, f]));
export const GROUP_BY_ID: ReadonlyMap<FamilyGroupId, FamilyGroup> = new Map(FAMILY_GROUPS.map((g) => [g.id, g]));
export const HARM_BY_ID: ReadonlyMap<string, HarmFamily> = new Map(HARM_FAMILIES.map((f) => [f.id, f]));

export interface CueHit {
  family: string;
  /** Lower-cased matched text (the cue as it reads). */
  cue: string;
  start: number;
  end: number;
  weight: number;
  /** Index of the matching pattern within its family (cue texts of one pattern are variants of one cue). */
  pattern: number;
}

const NEGATION_BEFORE_RE = /\b(?:without|no|not|never|avoid|don't|do not)\s+(?:\w+\s+){0,2}$/u;

/**
 * One pattern that matches a text where any of `patterns` does (their
 * alternation; none has a backreference or a named group, so each keeps its
 * meaning): most texts hold no cue of most families, and one scan tells.
 */
const anyOfPatterns = new WeakMap<readonly CuePattern[], RegExp>();
function anyOf(patterns: readonly CuePattern[]): RegExp {
  let re = anyOfPatterns.get(patterns);
  if (re === undefined) {
    re = new RegExp(patterns.map((pat) => `(?:${pat.re.source})`).join('|'), 'u');
    anyOfPatterns.set(patterns, re);
  }
  return re;
}

/** The hits of one family's patterns in `norm`, a text already through normalizeChars. */
function scan(norm: string, family: string, patterns: readonly CuePattern[]): CueHit[] {
  if (!anyOf(patterns).test(norm)) return [];
  const hits: CueHit[] = [];
  patterns.forEach((pat, pi) => {
    for (const m of norm.matchAll(pat.re)) {
      const start = m.index ?? 0;
      const end = start + m[0].length;
      let weight = pat.weight;
      if (pat.negatable && NEGATION_BEFORE_RE.test(norm.slice(Math.max(0, start - 30), start))) weight *= 0.3;
      hits.push({ family, cue: m[0].replace(/\s+/g, ' ').trim(), start, end, weight, pattern: pi });
    }
  });
  // Overlapping hits of one family count once: keep the strongest (then earliest, then longest).
  hits.sort((a, b) => b.weight - a.weight || a.start - b.start || b.end - b.start - (a.end - a.start));
  const kept: CueHit[] = [];
  for (const h of hits) {
    if (kept.some((k) => h.start < k.end && k.start < h.end)) continue;
    kept.push(h);
  }
  return kept.sort((a, b) => a.start - b.start || a.end - b.end);
}

/** Cue hits of every family whose patterns apply to `where`, sorted by position then family. */
export function findCues(text: string, where: 'perturbed' | 'removed'): CueHit[] {
  const norm = normalizeChars(text);
  const out: CueHit[] = [];
  for (const fam of CUE_FAMILIES) {
    if (fam.appliesTo !== where) continue;
    out.push(...scan(norm, fam.id, fam.patterns));
  }
  return out.sort((a, b) => a.start - b.start || a.end - b.end || (a.family < b.family ? -1 : a.family > b.family ? 1 : 0));
}

/** Harm-family hits in one harmful-action description. */
export function findHarmCues(text: string): CueHit[] {
  const norm = normalizeChars(text);
  const out: CueHit[] = [];
  for (const fam of HARM_FAMILIES) out.push(...scan(norm, fam.id, fam.patterns));
  return out.sort((a, b) => a.start - b.start || (a.family < b.family ? -1 : a.family > b.family ? 1 : 0));
}

/** Combines independent pieces of evidence in [0,1] (noisy-or). */
export function noisyOr(weights: readonly number[]): number {
  let miss = 1;
  for (const w of weights) miss *= 1 - Math.min(1, Math.max(0, w));
  return 1 - miss;
}
