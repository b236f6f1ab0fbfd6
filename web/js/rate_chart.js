// A bar chart of events per bucket over a sliding window, drawn on a canvas.

export class RateChart {
  constructor(canvas, {windowSeconds = 300, bucketSeconds = 5} = {}) {
    this.canvas = canvas;
    this.bucketMs = bucketSeconds * 1000;
    this.buckets = Math.round(windowSeconds / bucketSeconds);
    this.times = [];
    this.draw(Date.now());
  }

  /** Records one event at `now` (milliseconds). */
  add(now) {
    this.times.push(now);
  }

  /** Counts per bucket, oldest first, for the window ending at `now`. */
  series(now) {
    const start = now - this.buckets * this.bucketMs;
    while (this.times.length && this.times[0] < start) this.times.shift();
    const counts = new Array(this.buckets).fill(0);
    for (const t of this.times) {
      const index = Math.min(this.buckets - 1, Math.floor((t - start) / this.bucketMs));
      if (index >= 0) counts[index] += 1;
    }
    return counts;
  }

  draw(now) {
    const counts = this.series(now);
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, this.canvas.clientWidth);
    const height = Math.max(1, this.canvas.clientHeight);
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    const g = this.canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const colour = style.getPropertyValue('--chart').trim() || '#1f5fbf';
    const muted = style.getPropertyValue('--muted').trim() || '#666';
    const max = Math.max(1, ...counts);
    const barWidth = width / this.buckets;
    const top = 14;
    g.fillStyle = colour;
    counts.forEach((n, i) => {
      const barHeight = ((height - top - 12) * n) / max;
      g.fillRect(i * barWidth + 1, height - 12 - barHeight, Math.max(1, barWidth - 2), barHeight);
    });
    g.fillStyle = muted;
    g.font = '11px system-ui, sans-serif';
    g.fillText(`max ${max} per ${this.bucketMs / 1000} s`, 2, 11);
    g.fillText('-5 min', 2, height - 1);
    const label = 'now';
    g.fillText(label, width - g.measureText(label).width - 2, height - 1);
    const total = counts.reduce((a, b) => a + b, 0);
    this.canvas.setAttribute(
        'aria-label',
        `Events over the last five minutes: ${total} in all, at most ${max} in ${
            this.bucketMs / 1000} seconds`);
  }
}
