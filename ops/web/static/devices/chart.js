// A small SVG line chart per figure: no library, no canvas, readable values beside the line.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 90;

/**
 * Draw points [{t: ms, v: number}] into a new <svg>, with dashed lines at the limits. Points of
 * a downsampled history also carry {lo, hi} (the bucket's min and max), drawn as a band behind
 * the line of averages.
 * @returns {SVGSVGElement}
 */
export function lineChart(points, { above = null, below = null, label = "" } = {}) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (points.length === 0) return svg;
  const banded = points.filter((p) => p.lo !== undefined && p.hi !== undefined);
  const values = points.map((p) => p.v);
  for (const p of banded) values.push(p.lo, p.hi);
  for (const limit of [above, below]) if (limit !== null) values.push(limit);
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high === low) {
    high += 1;
    low -= 1;
  }
  const t0 = points[0].t;
  const t1 = points.length > 1 ? points[points.length - 1].t : t0 + 1;
  const x = (t) => ((t - t0) / (t1 - t0 || 1)) * (WIDTH - 4) + 2;
  const y = (v) => HEIGHT - 4 - ((v - low) / (high - low)) * (HEIGHT - 8);
  for (const limit of [above, below]) {
    if (limit === null) continue;
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("class", "limit");
    line.setAttribute("x1", "0");
    line.setAttribute("x2", String(WIDTH));
    line.setAttribute("y1", String(y(limit)));
    line.setAttribute("y2", String(y(limit)));
    svg.append(line);
  }
  if (banded.length) {
    const band = document.createElementNS(SVG, "polygon");
    band.setAttribute("class", "band");
    const upper = banded.map((p) => `${x(p.t).toFixed(1)},${y(p.hi).toFixed(1)}`);
    const lower = banded.map((p) => `${x(p.t).toFixed(1)},${y(p.lo).toFixed(1)}`).reverse();
    band.setAttribute("points", [...upper, ...lower].join(" "));
    svg.append(band);
  }
  const polyline = document.createElementNS(SVG, "polyline");
  polyline.setAttribute(
    "points",
    points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "),
  );
  svg.append(polyline);
  return svg;
}
