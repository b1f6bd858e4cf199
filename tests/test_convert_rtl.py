"""The converter RTL against the golden model: every code, both formats, every bias."""

from amaranth import Module

from hw.units.fp8_to_fp9 import Fp8ToFp9
from sim.runner import run_cocotb
from sim.tops import ConvertBiasSweep, sweep_output_name


def test_every_code_every_bias(sim, tmp_path):
    result = run_cocotb(ConvertBiasSweep(), "convert_bias_sweep", sim, "sim.tb.convert_tb",
                        tmp_path)
    assert result.tests == 2
    assert result.failed == 0


class _BrokenSweep(ConvertBiasSweep):
    """A planted bug: at bias 11, code 0x3A comes out with its LSB flipped."""

    def elaborate(self, platform):
        m = Module()
        for b in self.biases:
            conv = m.submodules[f"convert_bias{b}"] = Fp8ToFp9(b)
            m.d.comb += [conv.fmt.eq(self.fmt), conv.a.eq(self.a)]
            flip = (self.a == 0x3A) if b == 11 else 0
            m.d.comb += getattr(self, sweep_output_name(b)).eq(conv.y.as_value() ^ flip)
        return m


def test_testbench_catches_a_wrong_bit(tmp_path):
    """The testbench must fail on a converter that is wrong in one bit of one code."""
    result = run_cocotb(_BrokenSweep(), "convert_broken", "icarus", "sim.tb.convert_tb",
                        tmp_path, quiet=True)
    assert result.tests == 2
    assert result.failed == 2      # 0x3A is wrong as e4m3 and as e5m2
    log = result.log.read_text()
    assert "a=0x3a" in log and "rtl=0x" in log and "golden=0x" in log
