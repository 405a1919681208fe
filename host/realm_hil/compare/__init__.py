"""Software error models against the hardware, and calibration of the timing profile to it."""

from ..error_models import PerBitModel, RealmModel
from .calibrate import Calibration, calibrate, write_profile
from .metrics import Distances, ErrorProfile, distances, error_profile
from .models import Run
from .report import summary_table, write_report
from .run import HARDWARE, MODELS, ClockComparison, Comparison, compare_models

__all__ = ["HARDWARE", "MODELS", "Calibration", "ClockComparison", "Comparison", "Distances", "ErrorProfile",
           "PerBitModel", "RealmModel", "Run", "calibrate", "compare_models", "distances", "error_profile",
           "summary_table", "write_profile", "write_report"]
