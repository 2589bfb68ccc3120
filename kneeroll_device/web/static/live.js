// The live view: each server-sent snapshot of the daemon's state is shown as it comes.
"use strict";
const el = (id) => document.getElementById(id);
const STATES = {
  silent: "No session is running: the kneeroll service sends nothing. Is it running, with its sensors?",
  idle: "No session is running. Start rolling, or press the button, to begin.",
  finished: "The session is over. See it under Sessions.",
  paused: "Paused: carry on rolling to resume.",
};

function progressOf(step) {
  const t = step.targets || {};
  if (step.kind === "roll") {
    const goal = t.roll_seconds_min || 1;
    return [step.active_s / goal, `${Math.round(step.active_s)} of ${goal} s rolling`];
  }
  const per = t.reps_per_point_min || 1, points = t.points || 1;
  const done = step.points_done * per + Math.min(step.reps_at_point, per);
  return [done / (per * points), `${step.reps_at_point} of ${per} reps here · point ${Math.min(step.points_done + 1, points)} of ${points}`];
}

function show(s) {
  const step = s.step;
  let status = STATES[s.state] || "";
  if (s.sensors_missing && s.sensors_missing.length) status = `No data from the ${s.sensors_missing.join(" and ")} sensor. ` + status;
  el("status").textContent = step && !STATES[s.state] ? (s.sensors_missing && s.sensors_missing.length ? status : "Session running") : status;
  el("session").hidden = !step;
  if (!step) return;
  el("stepno").textContent = `Step ${step.position} of ${step.total} · ${step.leg} leg`;
  el("stepname").textContent = step.name;
  el("instruction").textContent = step.instruction;
  const [share, text] = progressOf(step);
  el("bar").style.width = `${Math.min(100, 100 * share)}%`;
  el("progress-text").textContent = step.done ? `Done: ${text}` : text;
  el("strokes").textContent = step.strokes;
  el("reps").textContent = step.reps;
  const kpa = step.kpa === null ? 0 : step.kpa, limit = step.limit_kpa;
  const full = limit * 1.5;
  el("gauge-fill").style.width = `${Math.min(100, 100 * kpa / full)}%`;
  el("gauge-fill").classList.toggle("over", kpa > limit);
  el("gauge-limit").style.left = `${100 * limit / full}%`;
  el("pressure-text").textContent = step.kpa === null ? "No pressure reading" : `${kpa.toFixed(1)} kPa of ${limit} kPa limit`;
  const w = s.warning;
  el("warning").hidden = !w;
  if (w) el("warning").textContent = `Too hard: ${w.kpa} kPa, over the ${w.limit_kpa} kPa limit. Ease off.`;
}

const source = new EventSource(el("status").dataset.events);
// how long each snapshot took from the daemon to this page (the same machine's clock in a demo)
window.liveDelays = [];
let lastSeq = null;
source.onmessage = (e) => {
  const s = JSON.parse(e.data);
  if (s.sent_at && s.seq !== lastSeq) window.liveDelays.push(Date.now() / 1000 - s.sent_at);
  lastSeq = s.seq;
  show(s);
};
source.onerror = () => { el("status").textContent = "Lost the connection to the Pi; trying again…"; };
