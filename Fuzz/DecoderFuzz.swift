// libFuzzer entry point for the control-socket request decoder.
// Built and run by scripts/fuzz (not part of the package build).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let (_, _, result) = RequestDecoder().decode(bytes)
    if case .failure(let e) = result, e.message.isEmpty { fatalError("error without a message") }
    return 0
}
