"""Register map constants (generated from rtl/regmap.yaml by realm_hil.regmap_gen; do not edit)."""

ID_VALUE = 0x5245414C
VERSION_VALUE = 0x00010001
ADDR_WIDTH = 14
WINDOW = 0x4000
STREAM_MAGIC = 0x7EA1
STATS_WORDS = 16
BD_CELLS = {'accelerator': 'realm_accel', 'clock_wizard': 'clk_wiz', 'dma': 'dma'}

ID = 0x000
VERSION = 0x004
PARAMS = 0x008
CTRL = 0x00C
STATUS = 0x010
CONFIG = 0x014
POLICY = 0x018
ALPHA = 0x01C
BETA = 0x020
FREQ_MIN = 0x024
MSD_THRESH_LO = 0x028
MSD_THRESH_HI = 0x02C
INJ_TAG = 0x030
TILES_DONE = 0x040
TILES_ERR = 0x044
TILES_RECOVER = 0x048
FREQ_TOTAL = 0x04C
FREQ_EFF_TOTAL = 0x050
MAX_ABS = 0x054
MSD_TOTAL_LO = 0x058
MSD_TOTAL_HI = 0x05C
ROW_FREQ_TOTAL = 0x060
BUSY_CYCLES_LO = 0x064
BUSY_CYCLES_HI = 0x068

# (msb, lsb) of each register field
PARAMS_N = (7, 0)
PARAMS_TIMING_EMU = (8, 8)
PARAMS_INJECT = (9, 9)
PARAMS_EMU_CHECKS = (10, 10)
CTRL_SOFT_RESET = (0, 0)
CTRL_CLEAR_STATS = (1, 1)
STATUS_BUSY = (0, 0)
STATUS_FRAMING_ERR = (1, 1)
CONFIG_TIMING_EN = (0, 0)
CONFIG_INJ_EN = (1, 1)
CONFIG_INJ_MATCH_TAG = (2, 2)
POLICY_MODE = (1, 0)

HIST_BASE = 0x0080
L_TABLE_BASE = 0x1000
INJ_TABLE_BASE = 0x2000
CK_L_TABLE_BASE = 0x3000

REGISTERS = {
    'ID': (0x000, 'ro'),
    'VERSION': (0x004, 'ro'),
    'PARAMS': (0x008, 'ro'),
    'CTRL': (0x00C, 'wo'),
    'STATUS': (0x010, 'ro'),
    'CONFIG': (0x014, 'rw'),
    'POLICY': (0x018, 'rw'),
    'ALPHA': (0x01C, 'rw'),
    'BETA': (0x020, 'rw'),
    'FREQ_MIN': (0x024, 'rw'),
    'MSD_THRESH_LO': (0x028, 'rw'),
    'MSD_THRESH_HI': (0x02C, 'rw'),
    'INJ_TAG': (0x030, 'rw'),
    'TILES_DONE': (0x040, 'ro'),
    'TILES_ERR': (0x044, 'ro'),
    'TILES_RECOVER': (0x048, 'ro'),
    'FREQ_TOTAL': (0x04C, 'ro'),
    'FREQ_EFF_TOTAL': (0x050, 'ro'),
    'MAX_ABS': (0x054, 'ro'),
    'MSD_TOTAL_LO': (0x058, 'ro'),
    'MSD_TOTAL_HI': (0x05C, 'ro'),
    'ROW_FREQ_TOTAL': (0x060, 'ro'),
    'BUSY_CYCLES_LO': (0x064, 'ro'),
    'BUSY_CYCLES_HI': (0x068, 'ro'),
}
