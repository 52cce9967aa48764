"""The bar chart of variant / plain-twin ratios (PNG)."""
from typing import List

__all__ = ['plot']


def plot(rows: List[dict], path: str, title: str) -> None:
    """Inference, training-step, memory and paper ratios of every variant, written to ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    variants = [r for r in rows if r['twin'] is not None]
    keys = [('infer_ratio', 'inference latency', '#4c72b0'),
            ('train_ratio', 'training step', '#dd8452'),
            ('mem_ratio', 'peak training memory', '#55a868'),
            ('paper_ratio', 'paper (1 / FPS, Table 3)', '#bbbbbb')]
    keys = [k for k in keys if any(k[0] in r for r in variants)]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(variants) + 2), 4.5))
    width = 0.8 / max(len(keys), 1)
    for i, (key, label, color) in enumerate(keys):
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(variants))]
        vals = [r.get(key, float('nan')) for r in variants]
        bars = ax.bar(xs, vals, width, label=label, color=color,
                      hatch='//' if key == 'paper_ratio' else None, edgecolor='white')
        for bar, v in zip(bars, vals):
            if v == v:
                ax.text(bar.get_x() + bar.get_width() / 2, v, f'{v:.2f}', ha='center',
                        va='bottom', fontsize=7)
    ax.axhline(1.0, color='black', linewidth=0.8)
    ax.axhline(1.05, color='#c44e52', linestyle='--', linewidth=0.8, label='1.05x')
    ax.axhline(1.10, color='#8172b3', linestyle=':', linewidth=0.9, label='1.10x')
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels([f"{r['label']}\n(B={r['batch']})" for r in variants], fontsize=8)
    ax.set_ylabel('variant / plain twin')
    ax.set_ylim(bottom=0.8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc='upper left')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
