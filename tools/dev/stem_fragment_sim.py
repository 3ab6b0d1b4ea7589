#!/usr/bin/env python3
# Simulates, in plain Python, the fragment layouts of conv_stem.cu's depthwise and projection phases
# (ldmatrix.x4 of shifted pixel rows, diagonal B fragments, accumulators reused as the projection's
# A fragments) for one 14x14 tile and compares with the direct sums. Usage: stem_fragment_sim.py C1 O
# (e.g. 32 16, 56 32). Documents and checks the index arithmetic only; the kernel itself is tested
# on the GPU (CudaOps.StemFused).
import sys
import random
random.seed(1)
C1=int(sys.argv[1]); KP=(C1+15)//16*16; KS=KP//16; O=int(sys.argv[2])
S1=KP+8 if (KP//8)%2==0 else KP+16
kTile=14; side=16; nout=196
# c1 tile values (zero beyond C1)
c1=[[ (random.uniform(-1,1) if ch<C1 else 0.0) for ch in range(S1)] for px in range(side*side)]
wd=[[random.uniform(-1,1) for ch in range(C1)] for tap in range(9)]
bd=[random.uniform(-1,1) if c<C1 else 0.0 for c in range(KP)]
wp=[[random.uniform(-1,1) for o in range(O)] for k in range(C1)]
relu6=lambda v: min(max(v,0.0),6.0)
# flat smem as list indexed by half offset
def c1at(off):
    px,ch=divmod(off,S1); return c1[px][ch]
def ldmatrix_x4(addr_of_lane):
    regs=[[None]*4 for _ in range(32)]
    for i in range(4):
        rows=[addr_of_lane[8*i+r] for r in range(8)]
        for T in range(32):
            rr=T//4; cc=2*(T%4)
            regs[T][i]=(c1at(rows[rr]+cc),c1at(rows[rr]+cc+1))
    return regs
def mma(acc,a,b):
    # acc[lane][4], a[lane][4] pairs, b[lane][2] pairs
    A=[[0.0]*16 for _ in range(16)]; B=[[0.0]*8 for _ in range(16)]
    for l in range(32):
        g,t=l>>2,l&3
        A[g][2*t],A[g][2*t+1]=a[l][0]; A[g+8][2*t],A[g+8][2*t+1]=a[l][1]
        A[g][2*t+8],A[g][2*t+9]=a[l][2]; A[g+8][2*t+8],A[g+8][2*t+9]=a[l][3]
        B[2*t][g],B[2*t+1][g]=b[l][0]; B[2*t+8][g],B[2*t+9][g]=b[l][1]
    D=[[sum(A[i][k]*B[k][j] for k in range(16)) for j in range(8)] for i in range(16)]
    for l in range(32):
        g,t=l>>2,l&3
        acc[l][0]+=D[g][2*t]; acc[l][1]+=D[g][2*t+1]; acc[l][2]+=D[g+8][2*t]; acc[l][3]+=D[g+8][2*t+1]
# wdb
wdb={}
for tap in range(9):
  for h in range(KS):
    for jj in range(2):
      for l in range(32):
        lg,lt=l>>2,l&3; e=lg-2*lt; ch=16*h+8*jj+lg
        v=wd[tap][ch] if (e in (0,1) and ch<C1) else 0.0
        wdb[(tap,h,jj,l)]=(v,0.0) if e==0 else ((0.0,v) if e==1 else (0.0,0.0))
maxerr=0
for m in range(13):
    acc=[[[0.0]*4 for _ in range(32)] for _ in range(2*KS)]
    addr=[]
    for l in range(32):
        lrow=(l&7)+((l>>3)&1)*8; lkof=(l>>4)*8
        p=min(16*m+lrow,nout-1); ly,lx=divmod(p,kTile)
        addr.append((ly*side+lx)*S1+lkof)
    for tap in range(9):
        dy,dx=divmod(tap,3)
        for h in range(KS):
            af=ldmatrix_x4([a+(dy*side+dx)*S1+16*h for a in addr])
            d0=[(wdb[(tap,h,0,l)],(0.0,0.0)) for l in range(32)]
            d1=[((0.0,0.0),wdb[(tap,h,1,l)]) for l in range(32)]
            mma(acc[2*h],af,d0); mma(acc[2*h+1],af,d1)
    # pw
    accp=[[[0.0]*4 for _ in range(32)] for _ in range(O//8)]
    for s in range(KS):
        af=[]
        for l in range(32):
            g,t=l>>2,l&3; c0=16*s+2*t; c8=c0+8
            A=acc[2*s][l]; Bq=acc[2*s+1][l]
            af.append(((relu6(A[0]+bd[c0]),relu6(A[1]+bd[c0+1])),(relu6(A[2]+bd[c0]),relu6(A[3]+bd[c0+1])),
                       (relu6(Bq[0]+bd[c8]),relu6(Bq[1]+bd[c8+1])),(relu6(Bq[2]+bd[c8]),relu6(Bq[3]+bd[c8+1]))))
        for j in range(O//8):
            bf=[]
            for l in range(32):
                g,t=l>>2,l&3; n=8*j+g
                def w(k): return wp[k][n] if k<C1 else 0.0
                k=16*s+2*t
                bf.append(((w(k),w(k+1)),(w(k+8),w(k+9))))
            mma(accp[j],af,bf)
    # compare with direct
    for l in range(32):
        g,t=l>>2,l&3
        for hh in range(2):
            px=16*m+g+8*hh
            if px>=nout: continue
            ly,lx=divmod(px,kTile)
            dwv=[relu6(sum(c1[(ly+dy)*side+lx+dx][ch]*wd[dy*3+dx][ch] for dy in range(3) for dx in range(3))+bd[ch]) for ch in range(C1)]
            for j in range(O//8):
                for e in range(2):
                    o=8*j+2*t+e
                    ref=sum(dwv[ch]*wp[ch][o] for ch in range(C1))
                    got=accp[j][l][2*hh+e]
                    maxerr=max(maxerr,abs(ref-got))
print("C1",C1,"O",O,"max abs err",maxerr)
