"""The IMU's modules import one way: bus, chip, drivers, detection, the streaming IMU on top."""

import ast
from pathlib import Path

SENSORS = Path(__file__).resolve().parents[3] / "kneeroll_device" / "sensors"
DRIVERS = ("mpu6050", "lsm6dsox")


def sibling_imports(name: str) -> set[str]:
    """The modules of kneeroll_device.sensors that sensors/<name>.py imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse((SENSORS / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
    return found


def test_the_drivers_import_only_the_bus_the_chip_base_and_the_register_maps():
    for driver in DRIVERS:
        assert sibling_imports(driver) <= {"bus", "chip", "registers"}, driver


def test_no_sensor_module_imports_one_that_imports_it():
    graph = {path.stem: sibling_imports(path.stem) for path in SENSORS.glob("*.py")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    assert [name for name in graph if reaches(name, name, set())] == []
