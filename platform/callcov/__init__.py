"""CallCov: call-recording compliance and quality analysis API."""

__version__ = "0.1.0"
