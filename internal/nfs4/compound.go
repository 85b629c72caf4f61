package nfs4

import (
	"bytes"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"github.com/buildbarn/go-xdr/pkg/protocols/rpcv2"
)

// encodeRes encodes an operation's result: r (a success, or an error with a body such as
// NFS4ERR_DENIED) when given, else op's number and st.
func encodeRes(op nfsv4.NfsOpnum4, r nfsv4.NfsResop4, st status) []byte {
	if r != nil {
		b := bytes.NewBuffer(make([]byte, 0, r.GetEncodedSizeBytes())) // a READ's 1 MiB is copied once
		_, _ = r.WriteTo(b)
		return b.Bytes()
	}
	w := &xdrw{}
	w.u32(uint32(op))
	w.u32(uint32(st))
	return w.b
}

// sessionOps may come before SEQUENCE in a 4.1 compound (as its only operation).
func sessionless(op nfsv4.NfsOpnum4) bool {
	switch op {
	case nfsv4.OP_EXCHANGE_ID, nfsv4.OP_CREATE_SESSION, nfsv4.OP_DESTROY_SESSION, nfsv4.OP_DESTROY_CLIENTID,
		nfsv4.OP_BIND_CONN_TO_SESSION:
		return true
	}
	return false
}

// only40 are the operations RFC 8881 removed from 4.1.
func only40(op nfsv4.NfsOpnum4) bool {
	switch op {
	case nfsv4.OP_SETCLIENTID, nfsv4.OP_SETCLIENTID_CONFIRM, nfsv4.OP_RENEW, nfsv4.OP_OPEN_CONFIRM,
		nfsv4.OP_RELEASE_LOCKOWNER:
		return true
	}
	return false
}

// op serves the i-th operation of the compound. A non-nil replay is a retransmission's cached reply.
func (cs *compound) op(i int, a nfsv4.NfsArgop4) (res []byte, st status, replay []byte) {
	num := a.GetArgop()
	if num < nfsv4.OP_ACCESS || num > nfsv4.OP_RECLAIM_COMPLETE || num == 2 {
		return encodeRes(nfsv4.OP_ILLEGAL, nil, errOpIllegal), errOpIllegal, nil
	}
	if cs.minor == 0 && num > nfsv4.OP_RELEASE_LOCKOWNER {
		return encodeRes(nfsv4.OP_ILLEGAL, nil, errOpIllegal), errOpIllegal, nil
	}
	if cs.minor == 1 {
		if only40(num) {
			return encodeRes(num, nil, errNotSupp), errNotSupp, nil
		}
		if i == 0 && num != nfsv4.OP_SEQUENCE && !sessionless(num) {
			return encodeRes(num, nil, errOpNotInSession), errOpNotInSession, nil
		}
		if i > 0 && num == nfsv4.OP_SEQUENCE {
			return encodeRes(num, nil, errSequencePos), errSequencePos, nil
		}
		if i > 0 && cs.sess == nil {
			// The first operation was one that needs no session: it must be alone.
			return encodeRes(num, nil, errNotOnlyOp), errNotOnlyOp, nil
		}
	}
	var r nfsv4.NfsResop4
	switch a := a.(type) {
	case *nfsv4.NfsArgop4_OP_SEQUENCE:
		var rp []byte
		r, st, rp = cs.sequence(&a.Opsequence)
		if rp != nil {
			return nil, ok, rp
		}
	case *nfsv4.NfsArgop4_OP_EXCHANGE_ID:
		r, st = cs.exchangeID(&a.OpexchangeId)
	case *nfsv4.NfsArgop4_OP_CREATE_SESSION:
		r, st = cs.createSession(&a.OpcreateSession)
	case *nfsv4.NfsArgop4_OP_DESTROY_SESSION:
		st = cs.destroySession(a.OpdestroySession.DsaSessionid)
	case *nfsv4.NfsArgop4_OP_DESTROY_CLIENTID:
		st = cs.destroyClientID(a.OpdestroyClientid.DcaClientid)
	case *nfsv4.NfsArgop4_OP_BIND_CONN_TO_SESSION:
		r, st = cs.bindConn(&a.OpbindConnToSession)
	case *nfsv4.NfsArgop4_OP_RECLAIM_COMPLETE:
		st = cs.reclaimComplete()
	case *nfsv4.NfsArgop4_OP_SETCLIENTID:
		r, st = cs.setClientID(&a.Opsetclientid)
	case *nfsv4.NfsArgop4_OP_SETCLIENTID_CONFIRM:
		st = cs.setClientIDConfirm(&a.OpsetclientidConfirm)
	case *nfsv4.NfsArgop4_OP_RENEW:
		st = cs.renew(a.Oprenew.Clientid)
	case *nfsv4.NfsArgop4_OP_PUTROOTFH, *nfsv4.NfsArgop4_OP_PUTPUBFH:
		st = cs.putRootFH()
	case *nfsv4.NfsArgop4_OP_PUTFH:
		st = cs.putFH(a.Opputfh.Object)
	case *nfsv4.NfsArgop4_OP_GETFH:
		if st = cs.needFH(); st == ok {
			r = &nfsv4.NfsResop4_OP_GETFH{Opgetfh: &nfsv4.Getfh4res_NFS4_OK{Resok4: nfsv4.Getfh4resok{Object: cs.cur.raw}}}
		}
	case *nfsv4.NfsArgop4_OP_SAVEFH:
		if st = cs.needFH(); st == ok {
			cs.saved = cs.cur
		}
	case *nfsv4.NfsArgop4_OP_RESTOREFH:
		if cs.saved == nil {
			st = errRestoreFH
		} else {
			cs.cur = cs.saved
		}
	case *nfsv4.NfsArgop4_OP_LOOKUP:
		st = cs.lookup(a.Oplookup.Objname)
	case *nfsv4.NfsArgop4_OP_LOOKUPP:
		st = cs.lookupp()
	case *nfsv4.NfsArgop4_OP_GETATTR:
		r, st = cs.getattr(a.Opgetattr.AttrRequest)
	case *nfsv4.NfsArgop4_OP_ACCESS:
		r, st = cs.access(a.Opaccess.Access)
	case *nfsv4.NfsArgop4_OP_READLINK:
		r, st = cs.readlink()
	case *nfsv4.NfsArgop4_OP_READDIR:
		r, st = cs.readdir(&a.Opreaddir)
	case *nfsv4.NfsArgop4_OP_SECINFO, *nfsv4.NfsArgop4_OP_SECINFO_NO_NAME:
		if n, isName := a.(*nfsv4.NfsArgop4_OP_SECINFO); isName {
			st = cs.lookup(n.Opsecinfo.Name)
		} else {
			st = cs.needFH()
		}
		if st == ok {
			flavors := &nfsv4.Secinfo4res_NFS4_OK{Resok4: []nfsv4.Secinfo4{&nfsv4.Secinfo4_default{Flavor: rpcv2.AUTH_SYS}}}
			if num == nfsv4.OP_SECINFO {
				r = &nfsv4.NfsResop4_OP_SECINFO{Opsecinfo: flavors}
			} else {
				r = &nfsv4.NfsResop4_OP_SECINFO_NO_NAME{OpsecinfoNoName: flavors}
			}
			cs.cur = nil // RFC 8881 2.6.3.1.1.8: SECINFO consumes the current filehandle
		}
	case *nfsv4.NfsArgop4_OP_OPEN:
		r, st = cs.open(&a.Opopen)
	case *nfsv4.NfsArgop4_OP_OPEN_CONFIRM:
		r, st = cs.openConfirm(&a.OpopenConfirm)
	case *nfsv4.NfsArgop4_OP_OPEN_DOWNGRADE:
		r, st = cs.openDowngrade(&a.OpopenDowngrade)
	case *nfsv4.NfsArgop4_OP_CLOSE:
		r, st = cs.close(&a.Opclose)
	case *nfsv4.NfsArgop4_OP_LOCK:
		r, st = cs.lock(&a.Oplock)
	case *nfsv4.NfsArgop4_OP_LOCKT:
		r, st = cs.lockt(&a.Oplockt)
	case *nfsv4.NfsArgop4_OP_LOCKU:
		r, st = cs.locku(&a.Oplocku)
	case *nfsv4.NfsArgop4_OP_RELEASE_LOCKOWNER:
		st = cs.releaseLockOwner(&a.OpreleaseLockowner)
	case *nfsv4.NfsArgop4_OP_TEST_STATEID:
		r, st = cs.testStateid(a.OptestStateid.TsStateids)
	case *nfsv4.NfsArgop4_OP_FREE_STATEID:
		st = cs.freeStateid(a.OpfreeStateid.FsaStateid)
	case *nfsv4.NfsArgop4_OP_READ:
		r, st = cs.read(&a.Opread)
	case *nfsv4.NfsArgop4_OP_WRITE:
		r, st = cs.write(&a.Opwrite)
	case *nfsv4.NfsArgop4_OP_COMMIT:
		r, st = cs.commit()
	case *nfsv4.NfsArgop4_OP_CREATE:
		r, st = cs.create(&a.Opcreate)
	case *nfsv4.NfsArgop4_OP_LINK:
		r, st = cs.link(a.Oplink.Newname)
	case *nfsv4.NfsArgop4_OP_REMOVE:
		r, st = cs.remove(a.Opremove.Target)
	case *nfsv4.NfsArgop4_OP_RENAME:
		r, st = cs.rename(a.Oprename.Oldname, a.Oprename.Newname)
	case *nfsv4.NfsArgop4_OP_SETATTR:
		r, st = cs.setattr(&a.Opsetattr)
	case *nfsv4.NfsArgop4_OP_DELEGRETURN, *nfsv4.NfsArgop4_OP_DELEGPURGE:
		st = errBadStateID // no delegation is ever granted
		if num == nfsv4.OP_DELEGPURGE {
			st = errNotSupp
		}
	default:
		// VERIFY, NVERIFY, OPENATTR, pNFS layouts and devices, delegations, SET_SSV,
		// BACKCHANNEL_CTL: not supported (named_attr is false).
		st = errNotSupp
	}
	if st != ok && r != nil {
		switch r.(type) {
		case *nfsv4.NfsResop4_OP_LOCK, *nfsv4.NfsResop4_OP_LOCKT, *nfsv4.NfsResop4_OP_SETATTR:
		default:
			r = nil
		}
	}
	return encodeRes(num, r, st), st, nil
}
