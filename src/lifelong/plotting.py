"""What every figure shares: the line styles, and writing a PNG atomically. Below both the report and the
reproductions, which draw with them (neither imports the other for it)."""

import io

from .storage import replace_atomically

# Every line has a colour and a line style of its own: tab10's ten colours, then tab20b's twenty (30 in all), the
# style turning with each line, so that neighbours differ twice and a grey-scale print still tells them apart.
LINE_STYLES = (("-", "o"), ("--", "s"), (":", "^"))


def line_styles(n: int) -> list[dict]:
    """Matplotlib keywords (color, linestyle, marker) for n lines, no two alike (colours distinct up to 30)."""
    import matplotlib

    colours = list(matplotlib.colormaps["tab10"].colors) + list(matplotlib.colormaps["tab20b"].colors)
    styles = []
    for i in range(n):
        linestyle, marker = LINE_STYLES[(i + i // len(colours)) % 3]  # past 30 colours, the style still differs
        styles.append({"color": colours[i % len(colours)], "linestyle": linestyle, "marker": marker})
    return styles


def save_png(fig, path, dpi: int) -> None:
    """A figure as a PNG file, replaced atomically (never through a link planted at `path`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    replace_atomically(path, buffer.getbuffer())
