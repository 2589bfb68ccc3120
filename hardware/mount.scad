// kneeroll pod mount: a two-part collar that clamps round a roller handle,
// with a tray on top for the Pi Zero 2 W and the Pico.
//
// The handle runs along X. The collar splits at the handle's axis; two M3
// bolts through the side ears pull the halves together, with nuts held in
// hex pockets in the lower half. A gap between the halves leaves room to
// tighten: the collar grips before the halves touch.
//
// Render one part for printing with part = "upper" / "lower", both laid out
// ready to print with "both" (the default), or "assembled" to check the fit.
// Print in PETG or ASA: PLA creeps under constant clamp load in a warm hand.

/* [Handle] */
handle_diameter = 32;     // mm, measured with calipers over any grip tape
liner = 1.0;              // mm of rubber strip lining the collar (0 for none)
clearance = 0.3;          // mm, printer tolerance on the bore radius
clamp_width = 24;         // mm, collar length along the handle

/* [Pod] */
pod_length = 72;          // mm, tray size along the handle
pod_width = 62;           // mm, tray size across the handle
tray_thickness = 3;
standoff_height = 4;      // lifts the boards for the wiring underneath
pi_holes = [58, 23];      // Pi Zero 2 W mounting-hole spacing
pi_hole_d = 2.5;          // M2.5, self-tapping into the standoff
pico_holes = [47, 11.4];  // Pico mounting-hole spacing
pico_hole_d = 1.8;        // M2, self-tapping
strap_slot = [22, 3.5];   // velcro strap slots for the battery or cable

/* [Walls and screws] */
wall = 3.5;               // collar wall thickness
clamp_gap = 2;            // mm left between the halves before tightening
clamp_screw_d = 3.4;      // M3 clearance hole
clamp_nut_af = 5.7;       // M3 nut across flats, plus printing slack
clamp_nut_depth = 2.6;
ear_length = 9;           // how far the bolt ears stick out sideways
ear_height = 7;           // ear thickness per half

/* [Output] */
part = "both";            // [upper, lower, both, assembled]

$fn = 96;
eps = 0.01;

bore_r = handle_diameter / 2 + liner + clearance;
collar_r = bore_r + wall;
bolt_y = collar_r + ear_length / 2;          // bolt axis offset from the handle axis
tray_z = collar_r + 2;                       // underside of the tray above the axis

module check_parameters() {
    assert(handle_diameter > 10 && handle_diameter < 80, "handle_diameter should be 10-80 mm");
    assert(wall >= 2, "wall below 2 mm will crack when clamped");
    assert(ear_length > clamp_screw_d + 3, "ear_length must leave material round the bolt");
    assert(clamp_width > clamp_nut_af + 4, "clamp_width too narrow for the nut pockets");
    assert(pod_length >= max(pi_holes[0], pico_holes[0]) + 8, "pod_length too short for the boards");
    assert(pod_width >= pi_holes[1] + pico_holes[1] + 20, "pod_width too narrow for both boards");
}

// Half of a ring with its ears, above (side = 1) or below (side = -1) the
// split plane, shifted by half the clamp gap.
module collar_half(side) {
    translate([0, 0, side * clamp_gap / 2])
    difference() {
        intersection() {
            union() {
                rotate([0, 90, 0]) cylinder(r = collar_r, h = clamp_width, center = true);
                for (y = [-1, 1])
                    translate([0, y * (collar_r + ear_length) / 2, side * ear_height / 2])
                        cube([clamp_width, collar_r + ear_length, ear_height], center = true);
            }
            // keep this side of the split plane only
            translate([0, 0, side * (collar_r + ear_length)])
                cube([clamp_width + 1, 4 * (collar_r + ear_length), 2 * (collar_r + ear_length)], center = true);
        }
        rotate([0, 90, 0]) cylinder(r = bore_r, h = clamp_width + 1, center = true);
        for (y = [-1, 1]) translate([0, y * bolt_y, 0]) bolt_hole(side);
    }
}

module bolt_hole(side) {
    cylinder(d = clamp_screw_d, h = 2 * (collar_r + ear_length), center = true);
    // nut pocket on the outer face of the lower ear
    if (side < 0)
        translate([0, 0, -ear_height - eps])
            cylinder(d = clamp_nut_af / cos(30), h = clamp_nut_depth + eps, $fn = 6);
}

// The column that carries the tray: as wide as the collar, and merged into it.
module pedestal() {
    intersection() {
        translate([0, 0, (tray_z) / 2])
            cube([clamp_width, 2 * collar_r * 0.7, tray_z], center = true);
        difference() {
            translate([0, 0, tray_z / 2]) cube([clamp_width, 2 * collar_r, tray_z], center = true);
            rotate([0, 90, 0]) cylinder(r = bore_r, h = clamp_width + 1, center = true);
        }
    }
}

module standoff(hole_d) {
    difference() {
        cylinder(d = hole_d + 3.5, h = standoff_height);
        translate([0, 0, -eps]) cylinder(d = hole_d, h = standoff_height + 2 * eps);
    }
}

module hole_pattern(spacing) {
    for (x = [-1, 1], y = [-1, 1]) translate([x * spacing[0] / 2, y * spacing[1] / 2, 0]) children();
}

// Pi along one long edge, Pico along the other, centred on the handle axis.
pi_centre_y = -(pod_width / 2 - pi_holes[1] / 2 - 6);
pico_centre_y = pod_width / 2 - pico_holes[1] / 2 - 6;

module tray() {
    translate([0, 0, tray_z]) {
        difference() {
            translate([0, 0, tray_thickness / 2])
                cube([pod_length, pod_width, tray_thickness], center = true);
            // the standoff holes go on through the tray
            translate([0, pi_centre_y, -eps]) hole_pattern(pi_holes)
                cylinder(d = pi_hole_d, h = tray_thickness + 2 * eps);
            translate([0, pico_centre_y, -eps]) hole_pattern(pico_holes)
                cylinder(d = pico_hole_d, h = tray_thickness + 2 * eps);
            // strap slots near the short edges, clear of the pedestal
            for (x = [-1, 1])
                translate([x * (pod_length / 2 - strap_slot[1] / 2 - 3), 0, tray_thickness / 2])
                    cube([strap_slot[1], strap_slot[0], tray_thickness + 1], center = true);
        }
        translate([0, pi_centre_y, tray_thickness]) hole_pattern(pi_holes) standoff(pi_hole_d);
        translate([0, pico_centre_y, tray_thickness]) hole_pattern(pico_holes) standoff(pico_hole_d);
    }
}

// The clamp bolts go in from above, through access holes in the tray wide
// enough for the head and a screwdriver. Tighten the collar before the
// boards go on: they cover the holes.
module bolt_access() {
    for (y = [-1, 1])
        translate([0, y * bolt_y, ear_height])
            cylinder(d = 2 * clamp_screw_d + 2, h = tray_z + tray_thickness);
}

module upper() {
    collar_half(1);
    translate([0, 0, clamp_gap / 2]) difference() {
        union() { pedestal(); tray(); }
        for (y = [-1, 1]) translate([0, y * bolt_y, 0]) bolt_hole(1);
        bolt_access();
    }
}

module lower() {
    collar_half(-1);
}

// Upper part tray-down on the bed; lower part split face down, beside it.
module print_layout() {
    upper_top = tray_z + tray_thickness + clamp_gap / 2;
    translate([0, 0, upper_top]) rotate([180, 0, 0]) upper();
    translate([0, pod_width / 2 + collar_r + ear_length + 8, clamp_gap / 2]) lower();
}

check_parameters();
if (part == "upper") upper();
else if (part == "lower") lower();
else if (part == "assembled") { upper(); lower(); }
else print_layout();
