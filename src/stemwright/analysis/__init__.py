"""Song analysis, once per song: tempo, beats, downbeats, time signature and key, each with a confidence."""
from stemwright.analysis.song import SongAnalysis, analyze, analyze_path

__all__ = ["SongAnalysis", "analyze", "analyze_path"]
