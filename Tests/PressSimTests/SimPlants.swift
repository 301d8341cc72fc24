@testable import PressCore
@testable import PressSim

/// The default rig's simulated plant and its controller parameters, by actuator
/// ("spring" is channel A, anything else the pneumatic channel B).
func simPlant(_ actuator: String, seed: UInt64) -> (SimChannel, ChannelParameters) {
    actuator == "spring"
        ? (SimPresets.springChannel(seed: seed), SimPresets.springController())
        : (SimPresets.pneumaticChannel(seed: seed), SimPresets.pneumaticController())
}
