#!/usr/bin/env python3
"""Fails when two modules of a crate import each other (`use super::x` in one, `use
crate::…::y` back in the other): each responsibility has one room, and rooms depend one way.
A module re-exporting its own children is not counted. Run by scripts/test."""
import glob
import os
import re
import sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
def modpath(crate, f):
    rel=os.path.relpath(f, f"{crate}/src")[:-3]
    parts=rel.split('/')
    if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
    if parts and parts[0]=='bin': return None
    return tuple(parts)
edges=set()
for crate in ['common','gallery-server','manager-tui','tools','tests']:
    files=glob.glob(f'{crate}/src/**/*.rs',recursive=True)
    mods={}
    for f in files:
        m=modpath(crate,f)
        if m is not None: mods[m]=f
    for m,f in mods.items():
        src=open(f).read().split('#[cfg(test)]')[0]
        isdir=f.endswith(('mod.rs','lib.rs','main.rs'))
        paths=[]
        for head,mid,items in re.findall(r'\b(crate|super(?:::super)*|self)((?:::\w+)*)::\{([^}]*)\}', src):
            for it in items.split(','):
                it=it.strip().split(' ')[0]
                if it: paths.append(head+mid+'::'+it)
        paths+=re.findall(r'\b((?:crate|super(?:::super)*|self)(?:::\w+)+)', src)
        for path in paths:
            segs=path.split('::')
            if segs[0]=='crate': base=[]; segs=segs[1:]
            elif segs[0]=='self': base=list(m); segs=segs[1:]
            else:
                base=list(m) if isdir else list(m[:-1])
                segs=segs[1:]
                while segs and segs[0]=='super':
                    segs=segs[1:]; base=base[:-1]
            target=None
            for k in range(len(segs),-1,-1):
                cand=tuple(base+segs[:k])
                if cand in mods: target=cand; break
            if target is not None and target!=m:
                edges.add((crate,m,target))
seen=set()
for c,a,b in sorted(edges):
    if (c,b,a) in edges and (c,b,a) not in seen:
        seen.add((c,a,b))
        print(f"{c}: {'::'.join(a) or '(crate root)'} and {'::'.join(b) or '(crate root)'} import each other", file=sys.stderr)
if seen:
    sys.exit(1)
print(f"no two modules import each other ({len(edges)} imports between modules)")
