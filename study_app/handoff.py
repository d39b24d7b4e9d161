"""Sending a participant back to the crowd platform: completion and screen-out hand-offs.

- Prolific (and any `completion_url`): the browser goes to `completion_url` with `{code}` replaced by
  the completion or screen-out code (`https://app.prolific.com/submissions/complete?cc=<CODE>`).
- MTurk (ExternalQuestion): the page POSTs a form to `<turkSubmitTo>/mturk/externalSubmit` with
  `assignmentId` and the fields `code` and `outcome`. `turkSubmitTo` comes from the link, so it is
  accepted only for MTurk's own hosts (`MTURK_HOSTS`): anything else would make the study an open
  redirect.

`redirect_component()` is an `st.components.v2` element that performs the hand-off in the page
(a GET navigation or a form POST); the app also shows a plain link in case scripts are blocked.
"""

from __future__ import annotations

from urllib.parse import quote, urlparse

MTURK_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"

JS = """
export default function (component) {
  const { data, parentElement } = component;
  const el = parentElement.querySelector(".prsr-handoff");
  if (!el || !data || !data.url || el.dataset.done === data.url) return;
  el.dataset.done = data.url;
  const go = () => {
    if (data.method === "post") {
      const form = document.createElement("form");
      form.method = "POST";
      form.action = data.url;
      Object.entries(data.fields || {}).forEach(([k, v]) => {
        const input = document.createElement("input");
        input.type = "hidden"; input.name = k; input.value = v;
        form.appendChild(input);
      });
      document.body.appendChild(form);
      form.submit();
    } else {
      window.location.assign(data.url);
    }
  };
  setTimeout(go, data.delay_ms || 0);
}
"""


def completion_target(completion_url: str, code: str) -> str:
    """`completion_url` with its `{code}` placeholder replaced by the (URL-quoted) code."""
    return completion_url.replace("{code}", quote(code, safe=""))


def mturk_submit_url(turk_submit_to: str) -> str:
    """`<turkSubmitTo>/mturk/externalSubmit`; ValueError unless turkSubmitTo is one of MTURK_HOSTS."""
    parsed = urlparse(turk_submit_to or "")
    origin = f"{parsed.scheme}://{parsed.netloc}"
    if origin not in MTURK_HOSTS or parsed.path not in ("", "/"):
        raise ValueError(f"turkSubmitTo {turk_submit_to!r} is not one of MTurk's hosts {MTURK_HOSTS}")
    return origin + "/mturk/externalSubmit"


def handoff(study: dict, link: dict, code: str | None, outcome: str) -> dict | None:
    """The hand-off for a finished or screened-out participant: {url, method, fields} or None (the
    code is then only shown). `study`: the study row; `link`: the ids read from the link
    (platform parameters, incl. `turk_submit_to` and `assignment_id` for MTurk)."""
    if study.get("platform") == "mturk" and link.get("turk_submit_to") and link.get("assignment_id"):
        return dict(
            url=mturk_submit_url(link["turk_submit_to"]),
            method="post",
            fields=dict(assignmentId=link["assignment_id"], code=code or "", outcome=outcome),
        )
    if study.get("completion_url") and code:
        return dict(url=completion_target(study["completion_url"], code), method="get", fields={})
    return None


def redirect_component():
    import streamlit as st  # noqa: PLC0415  (only the app registers components; the targets are plain functions)

    return st.components.v2.component(
        "prsr_handoff", html='<div class="prsr-handoff" data-testid="handoff"></div>', js=JS
    )


def read_link(params, platform: str) -> dict:
    """The ids a study link carries: `pid` (participant id or None), `study_id`, `session_id`,
    `platform`, `preview` (an MTurk preview: show the instructions, take no slot), and for MTurk
    `assignment_id`, `turk_submit_to`. Prolific: PROLIFIC_PID, STUDY_ID, SESSION_ID; MTurk: workerId,
    hitId, assignmentId, turkSubmitTo; every platform also accepts the generic `pid`.
    `params`: a mapping of query parameters (str values)."""
    get = lambda k: params.get(k) or None  # noqa: E731  (empty parameters count as missing)
    link = dict(
        pid=get("pid"),
        study_id=None,
        session_id=None,
        platform=platform,
        preview=False,
        assignment_id=None,
        turk_submit_to=None,
    )
    if platform == "prolific":
        link.update(pid=get("PROLIFIC_PID") or link["pid"], study_id=get("STUDY_ID"), session_id=get("SESSION_ID"))
    elif platform == "mturk":
        assignment = get("assignmentId")
        link.update(
            pid=get("workerId") or link["pid"],
            study_id=get("hitId"),
            session_id=assignment,
            assignment_id=assignment,
            turk_submit_to=get("turkSubmitTo"),
            preview=assignment == MTURK_PREVIEW,
        )
        if link["preview"]:
            link.update(pid=None, session_id=None, assignment_id=None)
    return link
