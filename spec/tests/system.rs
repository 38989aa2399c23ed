//! The system policy reader (`muen_spec::system`) on small hand-written policies in
//! format B: the model, the view by mugensinfo's rule, the wiring, and the errors.
//! (`testbed/tests/system_pages.rs` checks the view against Muen's own pipeline.)

use std::path::Path;

use muen_abi::names::Role;
use muen_abi::{PhysAddr, VirtAddr};
use muen_sinfo::MemoryKind;
use muen_spec::model::{Content, Gpr, SourceAction, TargetAction};
use muen_spec::system::{self, EventMode, Sharer, SystemError};
use muen_spec::{Generation, Library, Origin};

/// The policy of `fixtures/system_b.xml` (a hand-written policy B in the 2026-04
/// format: two subjects, `app` (writes `chan`, reads `back`, exits to a reset, a timer)
/// and `peer` (reads `chan`, writes `back`), in two partitions) with `processor` as its
/// processor.
fn policy(processor: &str) -> String {
    FIXTURE.replace(NEW_PROCESSOR, processor)
}

const FIXTURE: &str = include_str!("fixtures/system_b.xml");

const OLD_PROCESSOR: &str = "<processor cpuCores=\"2\" speed=\"2111994\" vmxTimerRate=\"5\"/>";
const NEW_PROCESSOR: &str = "<processor cpuCores=\"2\"><x86_64 bspApicId=\"0\" tscFrequency=\"2111994\" vmxTimerRate=\"5\"/></processor>";

fn read(text: &str) -> Result<system::System, String> {
    system::read(text, Path::new("b.xml")).map_err(|e| e.to_string())
}

#[test]
fn the_model_holds_regions_events_subjects_and_the_plan() {
    let s = read(&policy(OLD_PROCESSOR)).unwrap();
    assert_eq!(s.generation, Generation::V2026_01);
    assert_eq!(s.tsc.khz(), 2_111_994);
    // Kernel regions are left out.
    let names: Vec<&str> = s.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["app|ram", "chan", "back", "app|sinfo", "app|text"]);
    let chan = &s.regions[1];
    assert_eq!(chan.address, PhysAddr::new(0x200_0000));
    assert_eq!((chan.size, chan.kind), (0x2000, MemoryKind::SubjectChannel));
    assert_eq!(chan.content, Content::Fill(0));
    let digest: [u8; 32] = std::array::from_fn(|i| i as u8);
    assert_eq!(chan.hash, Some(digest));
    // A hash reference is resolved to the referenced region's digest.
    assert_eq!(s.regions[2].hash, Some(digest));
    assert_eq!(
        s.regions[4].content,
        Content::File {
            filename: "app".into(),
            offset: Some(0x1000)
        }
    );
    assert_eq!(s.events[2].mode, EventMode::Async);
    let app = &s.subjects[0];
    assert_eq!((app.cpu, app.global_id, app.sched_group), (0, 0, 1));
    assert_eq!(
        app.vmx_exits[1].event.action,
        Some(SourceAction::SubjectSleep)
    );
    assert_eq!(app.vmcalls[2].event.id, 5);
    assert_eq!(app.targets[0].event.action, Some(TargetAction::Reset));
    assert_eq!(s.scheduling.tick_rate_hz, 1000);
    assert_eq!(s.scheduling.partitions[1].groups[0].subjects, [0]);
    assert_eq!(s.scheduling.major_frames[0].cpus[0].minor_frames.len(), 4);
    // The 2026-04 processor gives the same policy, but for the generation.
    let mut new = read(&policy(NEW_PROCESSOR)).unwrap();
    assert_eq!(new.generation, Generation::V2026_04);
    new.generation = Generation::V2026_01;
    assert_eq!(new, s);
}

#[test]
fn the_view_follows_mugensinfos_rule() {
    let s = read(&policy(NEW_PROCESSOR)).unwrap();
    let v = s.view(s.subject_index("app").unwrap()).unwrap();
    assert_eq!(v.name, "app");
    let got: Vec<_> = v
        .mappings
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.region.address.as_u64(),
                m.region.size,
                m.writable,
                m.executable,
                m.kind,
                m.role,
                m.origin,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "text",
                0x20_0000,
                0x1000,
                false,
                true,
                MemoryKind::SubjectBinary,
                Role::Memory,
                Origin::Component
            ),
            (
                "ram",
                0x4000_0000,
                0x10_0000,
                true,
                false,
                MemoryKind::Subject,
                Role::Memory,
                Origin::Component
            ),
            (
                "dev|out",
                0x10_0000_0000,
                0x2000,
                true,
                false,
                MemoryKind::SubjectChannel,
                Role::Writer,
                Origin::Component
            ),
            (
                "debuglog",
                0xf_fff0_0000,
                0x1000,
                false,
                false,
                MemoryKind::SubjectChannel,
                Role::Reader,
                Origin::Library(Library::Debuglog)
            ),
            (
                "sinfo",
                0xe_0000_0000,
                0x8000,
                false,
                false,
                MemoryKind::SubjectInfo,
                Role::Memory,
                Origin::Toolchain
            ),
        ]
    );
    let events: Vec<_> = v
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.number))
        .collect();
    assert_eq!(events, [("exit", 0), ("timer", 1), ("dev|out", 5)]);
    let vectors: Vec<_> = v
        .vectors
        .iter()
        .map(|e| (e.name.as_str(), e.number))
        .collect();
    assert_eq!(vectors, [("timer", 32), ("debuglog", 40)]);
    assert_eq!(v.registers.rip, Some(VirtAddr::new(0x20_0000)));
    assert_eq!(v.registers.rsp, Some(VirtAddr::new(0x4000_fff8)));
    // Registers set to 0 are Muen's reset state and left out.
    assert_eq!(
        v.registers.others.iter().collect::<Vec<_>>(),
        [(&Gpr::Rdi, &7)]
    );
    assert!(v.simd_exceptions);
}

#[test]
fn the_wiring_links_regions_events_and_the_plan() {
    let s = read(&policy(NEW_PROCESSOR)).unwrap();
    let app = s.subject_index("app").unwrap();
    let peer = s.subject_index("peer").unwrap();
    let w = s.wiring(app);
    assert_eq!(w.regions.len(), 5);
    assert!(w.regions[1].sharers.is_empty());
    assert_eq!(
        w.regions[2].sharers,
        [Sharer {
            subject: peer,
            mapping: 0,
            writable: false
        }]
    );
    assert!(w.regions[3].sharers[0].writable);
    // exit: a self event resetting app; timer: a vector in app; dev|out: peer's vector.
    assert_eq!(w.events[0].mode, EventMode::SelfEvent);
    assert_eq!(
        (
            w.events[0].targets[0].subject,
            w.events[0].targets[0].action
        ),
        (app, Some(TargetAction::Reset))
    );
    assert_eq!(
        w.events[1].targets[0].action,
        Some(TargetAction::InjectInterrupt { vector: 32 })
    );
    assert_eq!(
        (
            w.events[2].targets[0].subject,
            w.events[2].targets[0].action
        ),
        (peer, Some(TargetAction::InjectInterrupt { vector: 64 }))
    );
    assert_eq!(w.hlt, Some(SourceAction::SubjectSleep));
    // The partition `apps` runs 20 ticks from tick 10 and 15 from tick 35 of 50, and 7
    // of 7 in the second major frame.
    assert_eq!(w.schedule.partition, Some(1));
    assert_eq!(w.schedule.tick_rate_hz, 1000);
    assert_eq!(
        w.schedule.major_frames,
        [(50, vec![(10, 20), (35, 15)]), (7, vec![(0, 7)])]
    );
    let pw = s.wiring(peer);
    assert_eq!(pw.hlt, None);
    assert_eq!(pw.events[0].targets[0].subject, app);
    assert_eq!(
        pw.schedule.major_frames,
        [(50, vec![(0, 10), (30, 5)]), (7, vec![])]
    );
}

#[test]
fn unknown_subjects_and_devices_are_named() {
    let s = read(&policy(NEW_PROCESSOR)).unwrap();
    let e = s.subject_index("echo").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the system has no subject `echo`; its subjects: app, peer"
    );
    let with_device = policy(NEW_PROCESSOR).replacen(
        "<devices/>",
        "<devices><device logical=\"nic\" physical=\"eth0\"/></devices>",
        1,
    );
    let s = read(&with_device).unwrap();
    assert_eq!(
        s.view(0),
        Err(SystemError::Devices("app".into(), "nic".into()))
    );
}

#[test]
fn other_formats_are_refused_with_the_reason() {
    let e = read("<component name=\"echo\"/>").unwrap_err();
    assert!(
        e.starts_with("b.xml:1:1: <component>: this is a component specification"),
        "{e}"
    );
    let e = read("<system><channels/></system>").unwrap_err();
    assert!(
        e.contains("<channels>: this is a system policy in Muen's source format"),
        "{e}"
    );
    let format_a = policy(NEW_PROCESSOR).replace(
        "name=\"chan\" physicalAddress=\"16#0200_0000#\"",
        "name=\"chan\"",
    );
    let e = read(&format_a).unwrap_err();
    assert!(
        e.contains("memory region `chan` has no physicalAddress: this is format A"),
        "{e}"
    );
    let e = read("<hardware/>").unwrap_err();
    assert!(
        e.contains("expected a Muen system policy in format B"),
        "{e}"
    );
    let e = read("<system").unwrap_err();
    assert!(e.starts_with("b.xml:1:"), "{e}");
    assert!(e.contains("not well-formed XML"), "{e}");
    let e = read(&policy("<processor cpuCores=\"2\"/>")).unwrap_err();
    assert!(e.contains("neither `speed`"), "{e}");
}

#[test]
fn dangling_references_name_the_element() {
    let p = policy(NEW_PROCESSOR);
    let cases = [
        (
            p.replace("physical=\"chan\" virtualAddress=\"16#0010", "physical=\"nowhere\" virtualAddress=\"16#0010"),
            "<memory \"dev|out\">: physical region `nowhere` is not defined",
        ),
        (
            p.replace("physical=\"app|sinfo\"", "physical=\"kernel_text\""),
            "<memory \"sinfo\">: maps physical region `kernel_text` of type `kernel_binary`, which is not subject memory",
        ),
        (
            p.replace("physical=\"app_timer\"/>", "physical=\"app_tick\"/>"),
            "<event \"timer\">: physical event `app_tick` is not defined",
        ),
        (
            p.replace("<hashRef memory=\"chan\"/>", "<hashRef memory=\"gone\"/>"),
            "<hashRef memory=\"gone\">: no such subject memory region",
        ),
        (
            p.replace("partition=\"first\" ticks=\"10\"", "partition=\"second\" ticks=\"10\""),
            "<minorFrame>: partition `second` is not defined",
        ),
        (
            p.replace("<subject name=\"peer\"/></group>", "<subject name=\"pear\"/></group>"),
            "<subject>: subject `pear` is not defined",
        ),
        (
            p.replace("mode=\"async\" name=\"back\"", "mode=\"sometimes\" name=\"back\""),
            "<event>: unknown event mode `sometimes`",
        ),
        (
            p.replace("id=\"5\" logical=\"dev|out\"", "id=\"64\" logical=\"dev|out\""),
            "<event \"dev|out\">: source event ids are 0 to 63",
        ),
    ];
    for (text, message) in cases {
        let e = read(&text).unwrap_err();
        assert!(
            e.starts_with("b.xml:") && e.ends_with(message),
            "{e}\nwanted: {message}"
        );
    }
}
