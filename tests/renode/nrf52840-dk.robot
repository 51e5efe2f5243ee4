*** Comments ***
tinyadapt on Renode's nRF52840 DK: boot the image built by
`make -C firmware/ports BOARD=nrf52840-dk` through boards/renode/nrf52840-dk.resc and check that
the protocol server answers HELLO on UARTE0 with the board's and the core's names.

Run:    renode-test tests/renode/nrf52840-dk.robot [--variable ELF:/abs/path/tinyadapt.elf]
        (tests/test_renode.py builds the image and does this; Renode >= 1.14 for binary-mode testers.)
Not verified here: Renode cannot be installed on this machine (boards/README.md, "Renode").

The firmware prints nothing at boot, so the test speaks the protocol (docs/PROTOCOL.md): it
sends one HELLO request as the host does (0x00, COBS(frame), 0x00 0x00) and waits for the
COBS-encoded response. tests/test_renode.py checks these bytes against the protocol offline.

*** Variables ***
${ELF}                      ${CURDIR}/../../build/device/nrf52840-dk/tinyadapt.elf
${RESC}                     ${CURDIR}/../../boards/renode/nrf52840-dk.resc
${UART}                     sysbus.uart0

# HELLO request, seq 0x1234: frame 01 01 3412 01 00 0000, then its CRC-32 0x3288327F (7F 32 88 32).
@{HELLO_REQUEST}            0x00  0x06  0x01  0x01  0x34  0x12  0x01  0x01  0x01  0x05  0x7F  0x32
...                         0x88  0x32  0x00  0x00
# Its response, COBS-encoded: version 1, type 2 (response), seq 0x1234, cmd 1 (HELLO),
# status 0 (OK), len 48 = 20 + len("nrf52840-dk") + len("cortex-m4") + 8 (compiled-in model's size, CRC).
${HELLO_RESPONSE_HEADER}    06 01 02 34 12 01 02 30
# ... and, further on, board_len 11, core_len 9, "nrf52840-dk", "cortex-m4".
${HELLO_RESPONSE_NAMES}     0B 09 6E 72 66 35 32 38 34 30 2D 64 6B 63 6F 72 74 65 78 2D 6D 34

*** Keywords ***
Boot The Board
    # A free TCP port for the script's socket terminal, so that tests can run side by side.
    ${port}=                Evaluate    (lambda s: (s.bind(("127.0.0.1", 0)), s.getsockname()[1], s.close())[1])(__import__("socket").socket())
    Execute Command         $elf=@${ELF}
    Execute Command         $port=${port}
    Execute Command         include @${RESC}
    Create Terminal Tester  ${UART}    binaryMode=true

Send HELLO And Wait For Its Response
    FOR    ${byte}    IN    @{HELLO_REQUEST}
        Send Key To Uart    ${byte}
    END
    Wait For Bytes On Uart  ${HELLO_RESPONSE_HEADER}    timeout=2

*** Test Cases ***
Should Answer HELLO With Its Board And Core
    Boot The Board
    # The first bytes may arrive before the port has started UARTE0's receiver: resend, as the
    # host does on a timeout (HELLO is always executed, whatever its seq).
    Wait Until Keyword Succeeds    5x    1s    Send HELLO And Wait For Its Response
    Wait For Bytes On Uart  ${HELLO_RESPONSE_NAMES}     timeout=2
