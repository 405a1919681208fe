# PYNQ-Z2 (XC7Z020-1): the reference board. Read by every script in ../common.
# Tested with Vivado 2024.1.
set realm_part        xc7z020clg400-1
# TUL's board files come from the Vivado board store, not with Vivado (common/board_part.tcl)
set realm_board_part  *:pynq-z2:part0:*
set realm_board_store_item *:xilinx_board_store:pynq-z2:*
# PS: IP, automation (the board preset is added when the board files are there), extra settings, and
# the pins build_bd.tcl connects
set realm_ps_vlnv     xilinx.com:ip:processing_system7:5.5
set realm_ps_rule     xilinx.com:bd_rule:processing_system7
set realm_ps_automation {make_external "FIXED_IO, DDR" Master "Disable" Slave "Disable"}
set realm_ps_config   {CONFIG.PCW_USE_S_AXI_HP0 1 CONFIG.PCW_USE_M_AXI_GP0 1}
# Without the board files the PS gets the PYNQ-Z2's own settings, those its board preset applies
# (PYNQ's own PYNQ-Z2 designs for Vivado 2024.1 build from the part alone the same way): 50 MHz
# crystal, 512 MB of DDR3 on a 16-bit bus, the board's MIO banks and peripherals
set realm_ps_part_preset [list \
    CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ 50 \
    CONFIG.PCW_APU_PERIPHERAL_FREQMHZ 650 \
    CONFIG.PCW_UIPARAM_DDR_MEMORY_TYPE {DDR 3} \
    CONFIG.PCW_UIPARAM_DDR_PARTNO {MT41J256M16 RE-125} \
    CONFIG.PCW_UIPARAM_DDR_BUS_WIDTH {16 Bit} \
    CONFIG.PCW_UIPARAM_DDR_FREQ_MHZ 525 \
    CONFIG.PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL 1 \
    CONFIG.PCW_UIPARAM_DDR_TRAIN_READ_GATE 1 \
    CONFIG.PCW_UIPARAM_DDR_TRAIN_DATA_EYE 1 \
    CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY0 0.223 \
    CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY1 0.212 \
    CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY2 0.085 \
    CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY3 0.092 \
    CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0 0.040 \
    CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_1 0.058 \
    CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2 -0.009 \
    CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3 -0.033 \
    CONFIG.PCW_PRESET_BANK0_VOLTAGE {LVCMOS 3.3V} \
    CONFIG.PCW_PRESET_BANK1_VOLTAGE {LVCMOS 1.8V} \
    CONFIG.PCW_QSPI_PERIPHERAL_ENABLE 1 \
    CONFIG.PCW_QSPI_GRP_SINGLE_SS_ENABLE 1 \
    CONFIG.PCW_QSPI_GRP_FBCLK_ENABLE 1 \
    CONFIG.PCW_ENET0_PERIPHERAL_ENABLE 1 \
    CONFIG.PCW_ENET0_ENET0_IO {MIO 16 .. 27} \
    CONFIG.PCW_ENET0_GRP_MDIO_ENABLE 1 \
    CONFIG.PCW_ENET0_RESET_ENABLE 1 \
    CONFIG.PCW_ENET0_RESET_IO {MIO 9} \
    CONFIG.PCW_USB0_PERIPHERAL_ENABLE 1 \
    CONFIG.PCW_USB0_RESET_ENABLE 1 \
    CONFIG.PCW_USB0_RESET_IO {MIO 46} \
    CONFIG.PCW_SD0_PERIPHERAL_ENABLE 1 \
    CONFIG.PCW_SD0_GRP_CD_ENABLE 1 \
    CONFIG.PCW_SD0_GRP_CD_IO {MIO 47} \
    CONFIG.PCW_UART0_PERIPHERAL_ENABLE 1 \
    CONFIG.PCW_UART0_UART0_IO {MIO 14 .. 15} \
    CONFIG.PCW_GPIO_MIO_GPIO_ENABLE 1 \
]
set realm_ps_clk_param CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ
set realm_ps_master   M_AXI_GP0
set realm_hp_port     S_AXI_HP0
set realm_safe_clk    FCLK_CLK0
# array size: 64 DSP48E1 of 220, leaving room for the checking logic
set realm_n           8
# aclk (checking logic, AXI, DMA) in MHz; fixed PS clock
set realm_safe_mhz    100
# array_clk in MHz at which implementation must close timing; overclocking starts above it
set realm_rated_mhz   100
# HP0 is 64 bits wide and the PS7 address space 32 bits
set realm_dma_addr_width 32
