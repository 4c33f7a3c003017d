import RealModule

@usableFromInline func _log(_ x: Double) -> Double { Double.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Double.cos(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Double.sin(x) }
